import bulkrunner


def test_the_public_names_are_exactly_all() -> None:
    # dir(), not vars(): the names are imported on first use, and dir() lists them before that
    public = {name for name in dir(bulkrunner) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(bulkrunner, name)).__name__ == "module"}
    assert public - modules == set(bulkrunner.__all__)
    assert all(getattr(bulkrunner, name) is not None for name in bulkrunner.__all__)
