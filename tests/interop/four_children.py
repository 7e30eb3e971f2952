"""Adds a family of four to the interop directory (`run.sh`, before any server reads it):
Inès, Jules and Manon in the directory's first establishment, Nathan alone in its
second. The generated directories have no family of four; the `django-browser` phase logs
the mother in at Nathan's school, where a server that names one child at random per
ticket names him one time in four.

Usage: python3 four_children.py DIRECTORY.toml (appended in place)."""

import sys
import tomllib

LOGIN = "nadia.leroy"


def main(path):
    with open(path, "rb") as file:
        data = tomllib.load(file)
    first, second = (e["uai"] for e in data["establishments"][:2])
    children = [("Inès", first, "3A"), ("Jules", first, "5B"), ("Manon", first, "6C"), ("Nathan", second, "4A")]
    # Identifiers in a range `bonenfant sim directory` does not draw from (it uses 7 digits).
    lines = []
    for n, (name, uai, klass) in enumerate(children):
        lines += ["", "[[pupils]]", f'jointure = "9990{n}01"', f'eleve_id = "9990{n}02"', f'ine = "SIM999000{n}L"',
                  'last_name = "LEROY"', f'first_name = "{name}"', f'birth_date = "0{n + 1}/05/2012"',
                  f'uai = "{uai}"', f'class = "{klass}"']
    jointures = [f'"9990{n}01"' for n in range(4)]
    lines += ["", "[[parents]]", f'login = "{LOGIN}"', 'password = "demo-nadia"', 'last_name = "LEROY"',
              'first_name = "Nadia"', f"children = [{', '.join(jointures)}]",
              "", "[[parents.records]]", 'jointure = "99901001"', f'uai = "{first}"',
              f"children = [{', '.join(jointures[:3])}]",
              "", "[[parents.records]]", 'jointure = "99901002"', f'uai = "{second}"',
              f"children = [{jointures[3]}]"]
    with open(path, "a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
