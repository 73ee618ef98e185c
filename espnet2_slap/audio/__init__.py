"""Audio input: reading, crops by seek, sample counts, PCM conversion, resampling (``io``), the ``wav.scp`` reader
(``scp``), and the stage-2 formatter (``dump``)."""
