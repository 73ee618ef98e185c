"""Checkpoint files: read safely (``reader``), what a file holds under our module names (``layouts``), HTS-AT's
weights from any of them (``htsat``) and ESPnet's ``--init_param`` through the same reader (``init_param``)."""
