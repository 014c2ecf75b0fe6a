"""Faithful emulators of the SkyBiz and SmartAcc APIs, served on loopback from seeded data."""
