"""The browser's door into workspaces: the sign-in page and its session cookie, the IDE in
path mode (``/@OWNER/NAME/``) and, with an apps domain, each IDE and shared port on its own
host (``NAME--OWNER[--PORT].APPS_DOMAIN``) reached through a one-time ticket."""
