"""Data plumbing: records, face crops, the uint8 cache, transforms, samplers and splits."""
