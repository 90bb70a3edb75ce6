"""Training: the engine (one run as a stream of events), the executors that run tasks, the
sweep that drives them, and the recorder that saves each run as a session."""
