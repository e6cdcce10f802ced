"""The segmentation service: customers to segments, live re-assignment, drift and recommendations."""
