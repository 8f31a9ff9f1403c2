"""Puts the browser's door into the application: the sign-in pages, the IDE's path mode,
and, with an apps domain, the ticket endpoint and the app hosts in front of everything."""

from __future__ import annotations

from fastapi import FastAPI

from dev8.server.context import ServerContext
from dev8.server.web import apps, login
from dev8.server.web.state import WebState


def install(app: FastAPI, context: ServerContext) -> None:
    """Call last: the app-host dispatcher must be the outermost middleware. (The IDE's
    router is ``dev8.server.app``'s first.)"""
    state = WebState(context)
    app.state.web = state
    for router in (login.router, apps.ticket_router):
        app.include_router(router)
    domain = context.settings.apps_domain
    if domain:
        application = apps.app_host_application(context, state)
        app.add_middleware(apps.AppHostDispatcher, apps=application, apps_domain=domain)
