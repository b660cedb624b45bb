"""The watchdog command: for each runner gather -> decide -> act ->
report (command); the decision, PURE (decide); the summary, --json and
notifications (output); the metrics file (metrics)."""
