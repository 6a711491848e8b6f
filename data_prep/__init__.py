"""Data-preparation scripts (each has ``main(argv=None)`` and ``--help``).

* ``cutouts.py``  -- detect sources in a large FITS/PNG image and cut stamps + catalog.csv.
* ``render.py``   -- render a built-in / synthetic set to ``.npz`` or TFRecord shards.
* ``to_shards.py`` -- convert any supported input to TFRecord shards (streamed).
"""
