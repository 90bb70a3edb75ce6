"""The app's screens: Setup, Train and Compare, plus the dialogs they open."""
