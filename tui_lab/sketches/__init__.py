"""Terminal sketches of loss surfaces and the paths optimizers take across them.

Everything here draws through the plotext API, so the same code paints a textual-plotext
widget in the app and a plain string for the command line.
"""
