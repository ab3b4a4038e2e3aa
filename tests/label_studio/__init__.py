"""Label Studio's own storage API cases, run against this service (tests/test_label_studio_cases.py).

`wheel` fetches the `label-studio` wheel once into .cache/label-studio/ (nothing of it is
committed) and reads the tavern YAML files out of the zip; `tavern` is a small, faithful
re-implementation of the parts of tavern those files use (tavern itself does not load under
the pytest of this suite); `seed` creates the buckets, containers and objects of Label
Studio's tests/conftest.py and its GCS/Azure mocks on the suite's real servers; `adapt`
changes what every case needs changed to run here, and `localfiles` moves the local-files
cases into an organization's directory.
"""
