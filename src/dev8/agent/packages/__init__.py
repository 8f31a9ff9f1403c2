"""System packages that survive rebuilds.

The image's apt/dpkg hooks call ``record`` after every package operation; the agent calls
``restore`` when a new container starts. Everything lives on the root-owned system volume
under ``/var/lib/dev8/packages``.
"""
