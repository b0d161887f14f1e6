from shared.serve import serve
from shared.settings import IntakeSettings

if __name__ == "__main__":
    serve("services.intake.main:create_app", IntakeSettings())  # type: ignore[call-arg]
