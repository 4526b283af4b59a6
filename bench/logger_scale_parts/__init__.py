"""Parts of bench/logger_scale.py, kept out of bench/ so that bench/run.py does not list them."""
