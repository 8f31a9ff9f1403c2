"""Backups of workspace volumes: archive formats, the manifest, safety checks, helper scripts
and the restic snapshot repository."""
