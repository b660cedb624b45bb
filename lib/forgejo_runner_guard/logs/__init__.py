"""PURE: what a runner wrote.  One line -> fetch error / job start /
other, a window of lines -> Evidence (runnerlog); failure classes and the
polling model (failures); log sources (sources); times (stamps); journal
JSON entries (journal)."""
