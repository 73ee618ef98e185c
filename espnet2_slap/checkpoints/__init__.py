"""Checkpoint files: read safely (``reader``), what a file holds under our module names (``layouts``), HTS-AT's
weights from any of them (``htsat``), ESPnet's ``--init_param`` through the same reader (``init_param``) and a
packed model, the zip of a recipe's stage 9 (``packing``)."""
