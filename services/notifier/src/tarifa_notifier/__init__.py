"""The notifier owns alerts, recipients and their objects, silences, the notification log and report schedules."""
