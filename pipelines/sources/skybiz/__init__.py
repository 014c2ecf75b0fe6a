"""SkyBiz: the client, its window adapter, the normalizer and the source's spec."""
