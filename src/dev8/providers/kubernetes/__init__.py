"""The Kubernetes backend: a workspace is a Pod on three PersistentVolumeClaims, with its
environment in a Secret and a NetworkPolicy around it. ``specs`` builds them (pure)."""
