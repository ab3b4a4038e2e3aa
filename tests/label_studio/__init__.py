"""Label Studio's own storage API cases, run against this service (tests/test_label_studio_cases.py).

`wheel` fetches the `label-studio` wheel once into .cache/label-studio/ (nothing of it is
committed) and reads the tavern YAML files out of the zip; `tavern` is a small, faithful
re-implementation of the parts of tavern those files use (tavern itself does not load under
the pytest of this suite); `seed` creates the S3 buckets and objects of Label Studio's
tests/conftest.py on the moto server of the suite.
"""
