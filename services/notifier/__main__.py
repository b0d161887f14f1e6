if __name__ == "__main__":
    # Imported here, not above: the rendering process (spawned) runs this module again under
    # another name, and needs none of it.
    from services.notifier.settings import NotifierSettings
    from shared.serve import serve

    serve("services.notifier.main:create_app", NotifierSettings())  # type: ignore[call-arg]
