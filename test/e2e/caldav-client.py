#!/usr/bin/python3
"""The push gateway end-to-end test's CalDAV client (issue 14): python-caldav 0.11 (Debian's
python3-caldav), an implementation independent of ours, doing what a calendar app does through
the gateway. Run by test/e2e/gateway-radicale.test.ts with /usr/bin/python3 (the system Python,
which has caldav), one command per run; it prints one JSON object on stdout.

    caldav-client.py --url <dav url> --username U --password P <command> [arguments]

    discover                          the principal, its calendar home and calendars()
    mkcol <url> <displayname>         an RFC 5689 extended MKCOL of a calendar (see MKCOL_CALENDAR)
    save-event <calendar url> <uid> <summary>   calendar.save_event(ical)
    modify-event <calendar url> <event url> <summary>   the event loaded, its SUMMARY changed, event.save()

save-event and modify-event take --dont-notify <registration URL>, sent as the draft's
Push-Dont-Notify header on every request of that run. Every answer also lists the HTTP requests
the library made (method, URL, status, when sent and answered, in ms since the epoch), so the
test can time a write from the moment its PUT left.
"""
import argparse
import json
import sys
import time

import caldav

# What caldav's make_calendar would send as MKCALENDAR (RFC 4791 §5.3.1), as an extended MKCOL
# (RFC 5689 §3): workerd answers MKCALENDAR with 501 before any Worker code runs, so clients
# behind the gateway make calendars this way, as DAVx⁵ does.
MKCOL_CALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set>
    <D:prop>
      <D:resourcetype><D:collection/><C:calendar/></D:resourcetype>
      <D:displayname>{displayname}</D:displayname>
    </D:prop>
  </D:set>
</D:mkcol>"""

ICAL = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//push-director//gateway e2e//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20250101T090000Z
DTSTART:20250102T100000Z
DTEND:20250102T110000Z
SUMMARY:{summary}
END:VEVENT
END:VCALENDAR
"""


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def client_for(args):
    client = caldav.DAVClient(url=args.url, username=args.username, password=args.password, timeout=30)
    requests_made = []

    # requests' response hook: `elapsed` is from sending the request to parsing the answer's head
    def record(response, *_, **__):
        answered = time.time() * 1000
        sent = answered - response.elapsed.total_seconds() * 1000
        requests_made.append(
            {"method": response.request.method, "url": response.request.url, "status": response.status_code, "sent_at": sent, "answered_at": answered}
        )

    client.session.hooks["response"].append(record)
    if getattr(args, "dont_notify", None):
        # the draft's 1#quoted-registration-url; caldav adds client.headers to every request
        client.headers["Push-Dont-Notify"] = '"%s"' % args.dont_notify.replace("\\", "\\\\").replace('"', '\\"')
    return client, requests_made


def discover(client, args):
    principal = client.principal()
    calendars = principal.calendars()
    return {
        "principal": str(principal.url),
        "calendar_home_set": str(principal.calendar_home_set.url),
        "calendars": [{"url": str(c.url), "name": c.get_display_name()} for c in calendars],
    }


def mkcol(client, args):
    # the library's own low-level MKCOL (DAVClient.mkcol): caldav has no extended-MKCOL calendar call
    response = client.mkcol(args.target, MKCOL_CALENDAR.format(displayname=escape(args.displayname)))
    return {"status": response.status}


def save_event(client, args):
    calendar = client.calendar(url=args.calendar)
    event = calendar.save_event(ICAL.format(uid=args.uid, summary=args.summary))
    return {"url": str(event.url)}


def modify_event(client, args):
    calendar = client.calendar(url=args.calendar)
    event = calendar.event_by_url(args.event)  # loads it (GET)
    event.vobject_instance.vevent.summary.value = args.summary
    event.save()
    return {"url": str(event.url), "summary": event.vobject_instance.vevent.summary.value}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the DAV server (here: the gateway's dav_url)")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run, arguments in (
        ("discover", discover, ()),
        ("mkcol", mkcol, ("target", "displayname")),
        ("save-event", save_event, ("calendar", "uid", "summary", "--dont-notify")),
        ("modify-event", modify_event, ("calendar", "event", "summary", "--dont-notify")),
    ):
        command = commands.add_parser(name)
        for argument in arguments:
            command.add_argument(argument)
        command.set_defaults(run=run)
    args = parser.parse_args()

    client, requests_made = client_for(args)
    with client:
        result = args.run(client, args)
    result["requests"] = requests_made
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
