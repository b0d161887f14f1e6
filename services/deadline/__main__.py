from services.deadline.settings import DeadlineSettings
from shared.serve import serve

if __name__ == "__main__":
    serve("services.deadline.main:create_app", DeadlineSettings())  # type: ignore[call-arg]
