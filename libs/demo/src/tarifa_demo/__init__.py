"""`tarifa up --demo`: a demo tenant seeded through the APIs, local sinks and simulators, and the story of a month."""
