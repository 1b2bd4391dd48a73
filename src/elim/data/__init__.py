"""Data plumbing: records, decoding (io), face crops, the uint8 face cache (cache, extract,
shards), transforms, the torch dataset, the identity batch sampler and group splits."""
