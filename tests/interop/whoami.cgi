#!/bin/sh
# The Pronote stand-in behind mod_auth_cas: prints the user and every attribute header
# mod_auth_cas passed on (CASAuthNHeader / CASAttributePrefix), one per line, sorted,
# so the scripted browser reads exactly what a real application would receive.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
printf 'REMOTE_USER=%s\n' "$REMOTE_USER"
env | grep '^HTTP_CAS' | LC_ALL=C sort
