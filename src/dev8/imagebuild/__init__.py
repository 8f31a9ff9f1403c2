"""Building the workspace image: layers, the debootstrapped base, the extra-CA option."""
