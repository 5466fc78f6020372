"""Settings: config.yaml, profiles, environment and secret files validated into frozen models;
config versions and the live reload.
"""
