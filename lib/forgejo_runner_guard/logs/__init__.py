"""PURE: what a runner wrote.  One line -> fetch error / job start /
terminal / other, a window of lines -> Evidence (runnerlog); logrus's
key=value pairs and Go's quoting (logfmt); failure classes and the polling
model (failures); the states a restart never fixes (terminal); a log's last
lines (tail); log sources (sources); times (stamps); journal JSON entries
(journal)."""
