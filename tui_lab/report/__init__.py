"""Drawing and tables in plain text (plotext, rich): what the command line prints and the app
shows. Computation lives in ``tui_lab.analysis``; this layer only presents its results."""
