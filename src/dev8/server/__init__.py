"""`dev8 server`: the REST API, users and tokens, the reconciler and idle auto-stop."""
