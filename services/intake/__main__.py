from services.intake.settings import IntakeSettings
from shared.serve import serve

if __name__ == "__main__":
    serve("services.intake.main:create_app", IntakeSettings())  # type: ignore[call-arg]
