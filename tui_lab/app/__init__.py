"""The interactive Textual app of bslab: set up a sweep, watch it train, compare sessions."""
