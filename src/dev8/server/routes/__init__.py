"""The API's routers: thin, they translate HTTP to service calls and records to schemas."""
