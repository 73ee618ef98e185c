"""Audio input: reading, crops by seek, sample counts, PCM conversion, resampling, and the stage-2 formatter."""
