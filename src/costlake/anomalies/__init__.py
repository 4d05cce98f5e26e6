"""Cost anomaly detection with root-cause contributors (see detect.py, contributors.py, job.py)."""
