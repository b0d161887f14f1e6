from shared.serve import serve
from shared.settings import NotifierSettings

if __name__ == "__main__":
    serve("services.notifier.main:create_app", NotifierSettings())  # type: ignore[call-arg]
