"""Old home of the converters, kept so existing scripts run: each `datasets/<name>.py` here
runs `deeplab/datasets/<name>.py` (`python -m deeplab.datasets.<name>`). Not installed."""
