"""SmartAcc: the client, the ServiceStack date codec, its window adapter, the normalizer and the spec."""
