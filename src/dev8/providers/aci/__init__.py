"""The Azure Container Instances backend (``DEV8_PROVIDER=aci``, the ``azure`` extra)."""
