"""The commands' work composed above the layers: publish, then detect (and, later, alert)."""
