"""guard.conf and its drop-ins -> frozen settings (config), the value
parsers and vocabularies (values), what a pin may be (pinrules), and
--check-config (check)."""
