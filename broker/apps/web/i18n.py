"""Every text of the web app, in Dutch (the default: its users are Dutch operations staff,
coordinators and compliance officers) and English; the meaning of every code it shows; and
dates and times in Dutch time (Europe/Amsterdam).

One catalogue, two languages with the same keys (``tests/unit/web/test_web_i18n.py`` checks
that, and that no template holds text outside it). A code is shown with its meaning
(``no-consent`` reads "geen toestemming"), the code itself beside it for whoever searches the
logs. The language is ``?lang=`` (kept in a cookie), else the cookie, else the browser's
``Accept-Language`` (RFC 9110 §12.5.4), else Dutch.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import pass_context
from jinja2.runtime import Context

LANGUAGES = ("nl", "en")
DEFAULT = "nl"
COOKIE = "kb_lang"
ZONE = ZoneInfo("Europe/Amsterdam")
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# --- page texts -------------------------------------------------------------------------------
NL: dict[str, str] = {
    # frame
    "app.footer": "ketenbus — de cijfers komen van de topics; er is geen centrale database.",
    "nav.dashboard": "Beveiligde bedden",
    "nav.operations": "Beheer",
    "nav.escalations": "Escalaties",
    "nav.trace": "Bericht volgen",
    "nav.compliance": "Verantwoording",
    "nav.sign_out": "Afmelden",
    "nav.language": "Taal",
    "lang.nl": "Nederlands",
    "lang.en": "English",
    "time.note": "Tijden in Nederlandse tijd",
    "common.any": "alle",
    "common.show": "Toon",
    "common.live": "live",
    "common.none": "geen",
    # sign-in
    "login.title": "Aanmelden",
    "login.failed": "Aanmelden mislukt: verkeerde gebruikersnaam of wachtwoord (of te veel "
                    "pogingen; wacht een minuut).",
    "login.username": "Gebruikersnaam",
    "login.password": "Wachtwoord",
    "login.submit": "Aanmelden",
    "login.or": "Of meld u aan via uw organisatie:",
    "login.with": "Aanmelden via {label}",
    "login.oidc_refused": "Aanmelden via uw organisatie geweigerd: {why}",
    # refused page
    "refused.title": "Toegang geweigerd",
    "refused.back": "Terug naar het dashboard beveiligde bedden",
    "refused.roles": "deze pagina is alleen voor {roles}",
    "refused.form_too_large": "het formulier is te groot",
    "refused.form_expired": "het formulier is verlopen; laad de pagina opnieuw",
    "refused.and": " en ",
    # dashboard
    "dashboard.title": "Beveiligde bedden",
    "dashboard.heading": "Beschikbare beveiligde bedden",
    "dashboard.lead": "Landelijk dashboard beveiligde zorg: bedden die nu vrij zijn voor een "
                      "nieuwe opname, per regio en beveiligingsniveau, uit de capaciteits"
                      "meldingen van de aanbieders. Alleen aantallen.",
    "dashboard.region": "Regio",
    "dashboard.all_regions": "alle regio's",
    "dashboard.last_report": "laatste melding:",
    "dashboard.none_yet": "nog geen",
    "dashboard.stale_reports": "verouderde meldingen:",
    "dashboard.level": "Niveau {level}",
    "dashboard.available": "Beschikbaar",
    "dashboard.no_reports": "Nog geen capaciteitsmeldingen.",
    "dashboard.cell": "Cel: beschikbaar / in gebruik.",
    "dashboard.stale_since": "verouderd sinds {when}",
    "dashboard.stale_title": "verouderd: oudste melding {when}",
    "dashboard.over_time": "Beschikbare bedden in de tijd",
    "dashboard.chart_label": "Beschikbare beveiligde bedden in de tijd per beveiligingsniveau",
    "dashboard.level_key": "niveau {level}",
    "dashboard.no_history": "nog geen verloop",
    "dashboard.available_now": "niveau {level}: nu {n} beschikbaar",
    # operations
    "operations.title": "Beheer",
    "operations.lead": "Berichtstromen, weigeringen, dode brieven en wat vastzit — aantallen, "
                       "codes en partijen; geen gegevens over personen.",
    "operations.period": "Periode",
    "operations.last_hours": "laatste {h} uur",
    "operations.flow": "Berichtstroom",
    "operations.all_flows": "alle stromen",
    "operations.figures_of": "Cijfers van",
    "operations.per_hour": "Berichten per uur",
    "operations.per_hour_scope": "laatste {h} uur, {n} in totaal",
    "operations.hour": "Uur",
    "operations.total": "totaal",
    "operations.no_messages": "Geen berichten in deze periode.",
    "operations.refusals": "Weigeringen per reden",
    "operations.topic": "Topic",
    "operations.reason": "Reden",
    "operations.count": "Aantal",
    "operations.last": "Laatste",
    "operations.ago": "{age} geleden",
    "operations.no_refusals": "Geen weigeringen.",
    "operations.stuck": "Wat vastzit, en sinds wanneer",
    "operations.what": "Wat",
    "operations.where": "Waar",
    "operations.raised_by": "Gemeld door",
    "operations.since": "Sinds",
    "operations.for": "Duur",
    "operations.nothing_stuck": "Er zit niets vast.",
    "operations.escalation_summary": "Escalaties naar het landelijk coördinatiepunt: "
                                     "{delivered} afgeleverd, {refused} geweigerd.",
    "operations.dead_letters": "Dode brieven en geweigerde berichten",
    "operations.latest_first": "nieuwste eerst",
    "operations.when": "Wanneer",
    "operations.sender": "Afzender",
    "operations.source": "Bron",
    "operations.detail": "Toelichting",
    "operations.no_dead_letters": "Geen dode brieven.",
    "operations.lag": "Achterstand van consumers",
    "operations.group": "Groep",
    "operations.lag_count": "Achterstand",
    "operations.behind_for": "Achter sinds",
    "operations.no_groups": "Geen consumergroepen.",
    "operations.claims": "Declaraties",
    "operations.state": "Status",
    "operations.claim_count": "Declaraties",
    "operations.oldest": "Oudste",
    "operations.over_four_weeks": "Ouder dan 4 weken",
    "stuck.escalation": "escalatie: {reason} ({state}, {level})",
    "stuck.waiting": "{n} aanmelding(en) wachten op een inclusiebesluit",
    "stuck.claims": "{n} declaratie(s) wachten op antwoord",
    "stuck.claims_old": "{n} declaratie(s) wachten op antwoord, {old} ouder dan vier weken",
    "stuck.payers": "betalers",
    "stuck.lag": "consumergroep loopt {n} achter",
    # escalations
    "escalations.title": "Escalaties",
    "escalations.lead": "Vastgelopen casussen bij het landelijk coördinatiepunt: hun trede op "
                        "de ladder, status en leeftijd — uit het eigen topic van het "
                        "coördinatiepunt. De casus bij zijn ZVH-casusnummer; nooit de persoon. "
                        "Een antwoord gaat via de router, die het weigert als dit punt niet is "
                        "gevraagd of de escalatie al is opgelost; het verschijnt hier zodra de "
                        "router het heeft aanvaard.",
    "escalations.sent": "Verstuurd: {action}. De status verandert zodra de router het heeft "
                        "aanvaard.",
    "escalations.refused": "Geweigerd door de router:",
    "escalations.escalation": "Escalatie",
    "escalations.case": "Casus",
    "escalations.reason": "Reden",
    "escalations.raised_by": "Gemeld door",
    "escalations.level": "Niveau",
    "escalations.state": "Status",
    "escalations.assignee": "Toegewezen aan",
    "escalations.stuck_since": "Vast sinds",
    "escalations.age": "Leeftijd",
    "escalations.last_answer": "Laatste antwoord",
    "escalations.answer": "Antwoord",
    "escalations.action": "actie",
    "escalations.assign_to": "toewijzen aan (partij-id)",
    "escalations.note": "notitie",
    "escalations.send": "Verstuur",
    "escalations.none": "Geen escalaties.",
    "escalations.no_such": "geen escalatie of actie met die naam",
    "escalations.no_keys": "hier zijn geen sleutels van het coördinatiepunt",
    "escalations.not_sent": "het antwoord kon niet worden verstuurd (broker niet bereikbaar); "
                            "probeer het opnieuw",
    # compliance
    "compliance.title": "Verantwoording",
    "compliance.heading": "Verantwoording: het audittrail",
    "compliance.lead": "Wie kreeg wat over een persoon, wanneer, voor welk doel en op welke "
                       "grondslag. Elke zoekvraag wordt zelf in het audittrail vastgelegd.",
    "compliance.unavailable": "Zoeken in het audittrail kan niet op deze machine (geen sleutels "
                              "van de webapp).",
    "compliance.person": "Persoon (BSN)",
    "compliance.kept": "bewaard; typ om te wijzigen",
    "compliance.nine_digits": "9 cijfers",
    "compliance.recipient": "Ontvanger",
    "compliance.sender": "Afzender",
    "compliance.purpose": "Doel",
    "compliance.legal_basis": "Grondslag",
    "compliance.flow": "Berichtstroom",
    "compliance.kind": "Soort",
    "compliance.outcome": "Uitkomst",
    "compliance.from": "Van",
    "compliance.until": "Tot en met",
    "compliance.search": "Zoeken",
    "compliance.export": "CSV exporteren",
    "compliance.new_search": "Nieuwe zoekvraag",
    "compliance.tampered": "GEMANIPULEERD: het audittrail verifieert niet.",
    "compliance.tampered_detail": "{n} bevinding(en) op positie(s) {positions}. Rijen gemarkeerd "
                                  "als niet geverifieerd komen uit records die niet "
                                  "verifieerden, en records kunnen ontbreken of gewijzigd zijn: "
                                  "presenteer dit antwoord niet als feit.",
    "compliance.verified": "Het trail is geverifieerd: elke rij hieronder komt uit een record "
                           "waarvan hash, handtekening en plaats in de keten zijn gecontroleerd.",
    "compliance.found": "{n} record(s) gevonden",
    "compliance.in_total": "in {n} auditrecords",
    "compliance.pseudonym": "Persoon gezocht als pseudoniem (auditdomein):",
    "compliance.malformed": "{n} onleesbare record(s) overgeslagen: verifieer de keten.",
    "compliance.recorded": "Vastgelegd",
    "compliance.decision": "Besluit",
    "compliance.to": "Aan",
    "compliance.consent": "Toestemming",
    "compliance.categories": "Categorieën",
    "compliance.verified_col": "Geverifieerd",
    "compliance.decided_by": "besloten door {who}",
    "compliance.sealed": "verzegelde toelichting: {state}",
    "compliance.yes": "ja",
    "compliance.not_verified": "niet geverifieerd",
    "compliance.position": "positie {n}",
    "compliance.no_match": "Geen auditrecords gevonden.",
    "compliance.chain": "Verificatie van de keten",
    "compliance.verify": "Verifieer de auditketens",
    "compliance.intact": "Intact:",
    "compliance.intact_detail": "{n} records;",
    "compliance.up_to": "{chain} tot volgnummer {seq} (hash {hash})",
    "compliance.not_intact": "NIET intact:",
    "compliance.not_intact_detail": "{n} bevinding(en) in {records} records.",
    "compliance.not_a_date": "geen datum (JJJJ-MM-DD)",
    "compliance.not_a_bsn": "geen geldig BSN (9 cijfers die de elfproef doorstaan)",
    "compliance.no_pseudonyms": "deze webapp heeft geen pseudoniemsleutels en kan dus niet op "
                                "persoon zoeken",
    # trace
    "trace.title": "Bericht volgen",
    "trace.lead": "Waar een bericht nu is en wat er bij elke stap mee gebeurde: uit de topics en "
                  "het geverifieerde audittrail. Alleen codes, partijen en topics; elke keer "
                  "volgen wordt met uw gebruikers-id vastgelegd.",
    "trace.message_id": "Bericht-id",
    "trace.submit": "Volgen",
    "trace.tampered": "Het audittrail verifieert niet: stappen gemarkeerd als NIET "
                      "GEVERIFIEERD zijn verdacht.",
    "trace.summary": "bericht {id}: {n} stap(pen)",
    "trace.when": "wanneer",
    "trace.what": "wat",
    "trace.party": "partij",
    "trace.reason": "reden",
    "trace.where": "waar",
    "trace.detail": "toelichting",
    "trace.not_verified": "(NIET GEVERIFIEERD)",
    "trace.reprocess": "Opnieuw verwerken… (toont eerst wat er zou gebeuren)",
    "trace.none": "Bericht {id} staat op geen enkel topic en in geen enkel auditrecord "
                  "(onbekend id, of niet meer op de broker).",
    "trace.bad_id": "geen bericht-id (1-64 tekens uit A-Z, a-z, 0-9, - .)",
    "trace.unavailable": "volgen kan hier niet (geen sleutels van de console)",
    "trace.not_audited": "het volgen kon niet worden vastgelegd, dus het resultaat wordt niet "
                         "getoond",
    # re-process
    "reprocess.title": "Opnieuw verwerken",
    "reprocess.lead": "Stuur een geweigerd bericht opnieuw door de router, als nieuwe poging "
                      "die naar het origineel verwijst en met uw gebruikers-id wordt "
                      "vastgelegd. Ontvangers die het al kregen, krijgen het niet nog eens.",
    "reprocess.message": "bericht",
    "reprocess.from": "van",
    "reprocess.parked": "geparkeerd",
    "reprocess.refused": "geweigerd",
    "reprocess.delivered_before": "eerder afgeleverd aan",
    "reprocess.now": "nu",
    "reprocess.would_deliver": "zou afleveren aan {who}",
    "reprocess.nothing": "zou niets afleveren",
    "reprocess.send": "Opnieuw versturen",
    "reprocess.sent": "{sent} van {n} verstuurd als nieuwe poging",
    "reprocess.back": "Terug naar het volgen",
    "reprocess.bad_id": "geen bericht-id",
    "reprocess.unavailable": "opnieuw verwerken kan hier niet (geen sleutels van de deployment)",
    "reprocess.not_yours": "dit bericht komt niet van een organisatie waarvoor u werkt",
    "reprocess.unknown": "dit bericht is niet geparkeerd (onbekend id, of niet meer op de "
                         "broker)",
    # roles
    "role.operations": "beheer",
    "role.compliance": "functionaris gegevensbescherming",
    "role.coordination": "coördinatiepunt",
    "role.auditor": "auditor",
    "role.administrator": "beheerder",
}

EN: dict[str, str] = {
    "app.footer": "ketenbus — figures come from the topics; no central database.",
    "nav.dashboard": "Secure beds",
    "nav.operations": "Operations",
    "nav.escalations": "Escalations",
    "nav.trace": "Trace",
    "nav.compliance": "Compliance",
    "nav.sign_out": "Sign out",
    "nav.language": "Language",
    "lang.nl": "Nederlands",
    "lang.en": "English",
    "time.note": "Times in Dutch time",
    "common.any": "any",
    "common.show": "Show",
    "common.live": "live",
    "common.none": "none",
    "login.title": "Sign in",
    "login.failed": "Sign-in failed: wrong user name or password (or too many attempts; wait a "
                    "minute).",
    "login.username": "User name",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.or": "Or sign in through your organisation:",
    "login.with": "Sign in with {label}",
    "login.oidc_refused": "Sign-in through your organisation refused: {why}",
    "refused.title": "Access refused",
    "refused.back": "Back to the secure-bed dashboard",
    "refused.roles": "this page is for {roles} only",
    "refused.form_too_large": "form too large",
    "refused.form_expired": "the form has expired; reload the page",
    "refused.and": " and ",
    "dashboard.title": "Secure beds",
    "dashboard.heading": "Available secure beds",
    "dashboard.lead": "National secure-care dashboard: beds free for a new admission now, per "
                      "region and security level, from the providers' capacity reports. "
                      "Counts only.",
    "dashboard.region": "Region",
    "dashboard.all_regions": "all regions",
    "dashboard.last_report": "last report:",
    "dashboard.none_yet": "none yet",
    "dashboard.stale_reports": "stale reports:",
    "dashboard.level": "Level {level}",
    "dashboard.available": "Available",
    "dashboard.no_reports": "No capacity reports yet.",
    "dashboard.cell": "Cell: available / in service.",
    "dashboard.stale_since": "stale since {when}",
    "dashboard.stale_title": "stale: oldest report {when}",
    "dashboard.over_time": "Available beds over time",
    "dashboard.chart_label": "Available secure beds over time per security level",
    "dashboard.level_key": "level {level}",
    "dashboard.no_history": "no history yet",
    "dashboard.available_now": "level {level}: {n} available now",
    "operations.title": "Operations",
    "operations.lead": "Flows, refusals, dead letters and what is stuck — counts, codes and "
                       "parties only; no person-level data.",
    "operations.period": "Period",
    "operations.last_hours": "last {h} h",
    "operations.flow": "Flow",
    "operations.all_flows": "all flows",
    "operations.figures_of": "Figures of",
    "operations.per_hour": "Messages per hour",
    "operations.per_hour_scope": "last {h} h, {n} in all",
    "operations.hour": "Hour",
    "operations.total": "total",
    "operations.no_messages": "No messages in this period.",
    "operations.refusals": "Refusals by reason",
    "operations.topic": "Topic",
    "operations.reason": "Reason",
    "operations.count": "Count",
    "operations.last": "Last",
    "operations.ago": "{age} ago",
    "operations.no_refusals": "No refusals.",
    "operations.stuck": "Stuck, and since when",
    "operations.what": "What",
    "operations.where": "Where",
    "operations.raised_by": "Raised by",
    "operations.since": "Since",
    "operations.for": "For",
    "operations.nothing_stuck": "Nothing is stuck.",
    "operations.escalation_summary": "Escalations to the national coordination point: "
                                     "{delivered} delivered, {refused} refused.",
    "operations.dead_letters": "Dead letters and rejected records",
    "operations.latest_first": "latest first",
    "operations.when": "When",
    "operations.sender": "Sender",
    "operations.source": "Source",
    "operations.detail": "Detail",
    "operations.no_dead_letters": "No dead letters.",
    "operations.lag": "Consumer lag",
    "operations.group": "Group",
    "operations.lag_count": "Lag",
    "operations.behind_for": "Behind for",
    "operations.no_groups": "No consumer groups.",
    "operations.claims": "Claims",
    "operations.state": "State",
    "operations.claim_count": "Claims",
    "operations.oldest": "Oldest",
    "operations.over_four_weeks": "Over 4 weeks",
    "stuck.escalation": "escalation: {reason} ({state}, {level})",
    "stuck.waiting": "{n} referral(s) waiting for an inclusion decision",
    "stuck.claims": "{n} claim(s) awaiting an answer",
    "stuck.claims_old": "{n} claim(s) awaiting an answer, {old} over four weeks",
    "stuck.payers": "payers",
    "stuck.lag": "consumer group behind by {n}",
    "escalations.title": "Escalations",
    "escalations.lead": "Stuck cases at the national coordination point, their step on the "
                        "ladder, state and age — from the coordination point's own topic. The "
                        "case by its ZVH case number; never the person. An answer goes through "
                        "the router, which refuses it when this point was not asked or the "
                        "escalation is already resolved; it shows here once the router "
                        "accepted it.",
    "escalations.sent": "Sent: {action}. The state changes when the router has accepted it.",
    "escalations.refused": "Refused by the router:",
    "escalations.escalation": "Escalation",
    "escalations.case": "Case",
    "escalations.reason": "Reason",
    "escalations.raised_by": "Raised by",
    "escalations.level": "Level",
    "escalations.state": "State",
    "escalations.assignee": "Assigned to",
    "escalations.stuck_since": "Stuck since",
    "escalations.age": "Age",
    "escalations.last_answer": "Last answer",
    "escalations.answer": "Answer",
    "escalations.action": "action",
    "escalations.assign_to": "assign to (party id)",
    "escalations.note": "note",
    "escalations.send": "Send",
    "escalations.none": "No escalations.",
    "escalations.no_such": "no such escalation or action",
    "escalations.no_keys": "no coordination-point keys here",
    "escalations.not_sent": "the answer could not be sent (broker not reachable); try again",
    "compliance.title": "Compliance",
    "compliance.heading": "Compliance: the audit trail",
    "compliance.lead": "Who received what about a person, when, for which purpose and on which "
                       "legal basis. Every search is itself logged in the audit trail.",
    "compliance.unavailable": "The audit search is not available on this machine (no web app "
                              "keys).",
    "compliance.person": "Person (BSN)",
    "compliance.kept": "kept; type to change",
    "compliance.nine_digits": "9 digits",
    "compliance.recipient": "Recipient",
    "compliance.sender": "Sender",
    "compliance.purpose": "Purpose",
    "compliance.legal_basis": "Legal basis",
    "compliance.flow": "Flow",
    "compliance.kind": "Kind",
    "compliance.outcome": "Outcome",
    "compliance.from": "From",
    "compliance.until": "Until",
    "compliance.search": "Search",
    "compliance.export": "Export CSV",
    "compliance.new_search": "New search",
    "compliance.tampered": "TAMPERED: the audit trail does not verify.",
    "compliance.tampered_detail": "{n} finding(s) at position(s) {positions}. Rows marked not "
                                  "verified come from records that did not verify, and records "
                                  "may be missing or changed: do not present this answer as "
                                  "fact.",
    "compliance.verified": "The trail verified: every row below comes from a record whose hash, "
                           "signature and place in its chain were checked.",
    "compliance.found": "{n} record(s) found",
    "compliance.in_total": "in {n} audit records",
    "compliance.pseudonym": "Person searched as pseudonym (audit domain):",
    "compliance.malformed": "{n} malformed record(s) skipped: verify the chain.",
    "compliance.recorded": "Recorded",
    "compliance.decision": "Decision",
    "compliance.to": "To",
    "compliance.consent": "Consent",
    "compliance.categories": "Categories",
    "compliance.verified_col": "Verified",
    "compliance.decided_by": "decided by {who}",
    "compliance.sealed": "sealed detail: {state}",
    "compliance.yes": "yes",
    "compliance.not_verified": "not verified",
    "compliance.position": "position {n}",
    "compliance.no_match": "No audit records match.",
    "compliance.chain": "Chain verification",
    "compliance.verify": "Verify the audit chains",
    "compliance.intact": "Intact:",
    "compliance.intact_detail": "{n} records;",
    "compliance.up_to": "{chain} up to seq {seq} (hash {hash})",
    "compliance.not_intact": "NOT intact:",
    "compliance.not_intact_detail": "{n} finding(s) in {records} records.",
    "compliance.not_a_date": "not a date (YYYY-MM-DD)",
    "compliance.not_a_bsn": "not a valid BSN (9 digits that pass the eleven test)",
    "compliance.no_pseudonyms": "this web app has no pseudonym keys, so it cannot search by "
                                "person",
    "trace.title": "Trace",
    "trace.lead": "Where a message is now and what happened to it at each hop: from the topics "
                  "and the verified audit trail. Codes, parties and topics only; every trace is "
                  "audited with your user id.",
    "trace.message_id": "Message id",
    "trace.submit": "Trace",
    "trace.tampered": "The audit trail did not verify: hops marked NOT VERIFIED are suspect.",
    "trace.summary": "message {id}: {n} hop(s)",
    "trace.when": "when",
    "trace.what": "what",
    "trace.party": "party",
    "trace.reason": "reason",
    "trace.where": "where",
    "trace.detail": "detail",
    "trace.not_verified": "(NOT VERIFIED)",
    "trace.reprocess": "Re-process… (shows what would happen first)",
    "trace.none": "Message {id} is on no topic and in no audit record (unknown id, or no longer "
                  "on the broker).",
    "trace.bad_id": "not a message id (1-64 of A-Z, a-z, 0-9, - .)",
    "trace.unavailable": "tracing is not available here (no console keys)",
    "trace.not_audited": "the trace could not be audited, so it is not shown",
    "reprocess.title": "Re-process",
    "reprocess.lead": "Send a refused message through the router again, as a new attempt that "
                      "refers to the original and is audited with your user id. Recipients it "
                      "was delivered to before are not sent it again.",
    "reprocess.message": "message",
    "reprocess.from": "from",
    "reprocess.parked": "parked",
    "reprocess.refused": "refused",
    "reprocess.delivered_before": "delivered before to",
    "reprocess.now": "now",
    "reprocess.would_deliver": "would deliver to {who}",
    "reprocess.nothing": "would deliver nothing",
    "reprocess.send": "Send again",
    "reprocess.sent": "Sent {sent} of {n} as a new attempt",
    "reprocess.back": "Back to the trace",
    "reprocess.bad_id": "not a message id",
    "reprocess.unavailable": "re-processing is not available here (no deployment keys)",
    "reprocess.not_yours": "this message is not from an organisation you work for",
    "reprocess.unknown": "this message is not parked (unknown id, or no longer on the broker)",
    "role.operations": "operations",
    "role.compliance": "compliance officer",
    "role.coordination": "coordination point",
    "role.auditor": "auditor",
    "role.administrator": "administrator",
}

# --- the meaning of codes: "group.code" -> (Dutch, English) ------------------------------------
CODES: dict[str, tuple[str, str]] = {
    # policy decisions (broker.policy.decision.ReasonCode)
    "reason.permitted": ("toegestaan", "permitted"),
    "reason.no-rule-for-flow": ("geen regel voor deze berichtstroom", "no rule for this flow"),
    "reason.no-rule-for-flow-and-role": ("geen regel voor deze stroom en rol",
                                         "no rule for this flow and role"),
    "reason.sender-not-allowed": ("afzender mag dit niet sturen", "sender may not send this"),
    "reason.purpose-not-allowed": ("doel niet toegestaan", "purpose not allowed"),
    "reason.legal-basis-not-accepted": ("grondslag niet aanvaard", "legal basis not accepted"),
    "reason.statute-missing": ("wettelijke bepaling ontbreekt", "statute missing"),
    "reason.statute-not-accepted": ("wettelijke bepaling niet aanvaard",
                                    "statute not accepted"),
    "reason.task-missing": ("publieke taak ontbreekt", "public task missing"),
    "reason.task-not-accepted": ("publieke taak niet aanvaard", "public task not accepted"),
    "reason.justification-missing": ("onderbouwing ontbreekt", "justification missing"),
    "reason.professional-missing": ("beslissende professional ontbreekt",
                                    "deciding professional missing"),
    "reason.person-missing": ("persoon ontbreekt", "person missing"),
    "reason.no-consent": ("geen toestemming", "no consent"),
    "reason.consent-revoked": ("toestemming ingetrokken", "consent revoked"),
    "reason.consent-expired": ("toestemming verlopen", "consent expired"),
    "reason.consent-not-yet-valid": ("toestemming nog niet geldig", "consent not yet valid"),
    "reason.consent-categories-insufficient": ("toestemming dekt deze gegevens niet",
                                               "consent does not cover these data"),
    "reason.essential-category-missing": ("noodzakelijke gegevens ontbreken",
                                          "essential data missing"),
    "reason.essential-category-not-allowed": ("noodzakelijke gegevens niet toegestaan",
                                              "essential data not allowed"),
    "reason.personal-data-in-aggregate": ("persoonsgegevens in een telling",
                                          "personal data in a counts-only message"),
    "reason.citation-not-listed": ("wetsartikel niet in de lijst", "citation not listed"),
    "reason.legal-title-reference-missing": ("verwijzing naar de titel ontbreekt",
                                             "legal title reference missing"),
    "reason.conflict-of-duties-expired": ("conflict van plichten verlopen",
                                          "conflict of duties expired"),
    "reason.conflict-of-duties-validity-too-long": ("conflict van plichten te lang geldig",
                                                    "conflict of duties valid too long"),
    "reason.special-category-exception-missing": ("uitzondering bijzondere gegevens ontbreekt",
                                                  "special-category exception missing"),
    "reason.special-category-exception-not-accepted": (
        "uitzondering bijzondere gegevens niet aanvaard",
        "special-category exception not accepted"),
    "reason.criminal-data-ground-missing": ("grond voor strafrechtelijke gegevens ontbreekt",
                                            "ground for criminal data missing"),
    "reason.secrecy-ground-missing": ("grond voor doorbreken beroepsgeheim ontbreekt",
                                      "ground to break professional secrecy missing"),
    # trust (broker.trust.errors.Reason)
    "reason.malformed-envelope": ("onleesbare envelop", "malformed envelope"),
    "reason.missing-signature": ("handtekening ontbreekt", "signature missing"),
    "reason.unknown-sender": ("onbekende afzender", "unknown sender"),
    "reason.unknown-party": ("onbekende partij", "unknown party"),
    "reason.unknown-key": ("onbekende sleutel", "unknown key"),
    "reason.no-valid-key": ("geen geldige sleutel", "no valid key"),
    "reason.bad-signature": ("handtekening klopt niet", "bad signature"),
    "reason.key-not-yet-valid": ("sleutel nog niet geldig", "key not yet valid"),
    "reason.key-expired": ("sleutel verlopen", "key expired"),
    "reason.key-revoked": ("sleutel ingetrokken", "key revoked"),
    "reason.wrong-recipient": ("verkeerde ontvanger", "wrong recipient"),
    "reason.decrypt-failed": ("ontsleutelen mislukt", "decryption failed"),
    "reason.stale": ("te oud", "too old"),
    "reason.future-timestamp": ("tijdstip in de toekomst", "timestamp in the future"),
    "reason.duplicate": ("dubbel bericht", "duplicate"),
    "reason.already-delivered": ("al afgeleverd", "already delivered"),
    # adapters and the router's own
    "reason.not-json": ("geen JSON", "not JSON"),
    "reason.missing": ("verplicht veld ontbreekt", "required field missing"),
    "reason.invalid-input": ("ongeldige invoer", "invalid input"),
    "reason.file-type": ("verkeerd bestandstype", "wrong file type"),
    "reason.messaging-rule": ("berichtregel geschonden", "messaging rule broken"),
    "reason.invalid": ("ongeldig", "invalid"),
    "reason.not-asked": ("dit punt is niet gevraagd", "this point was not asked"),
    "reason.unknown-case": ("onbekende casus", "unknown case"),
    "reason.unknown-original": ("onbekend origineel", "unknown original"),
    "reason.escalation-open": ("escalatie loopt nog", "escalation still open"),
    "reason.answer-mismatch": ("antwoord past niet", "answer does not match"),
    "reason.raised-by-mismatch": ("andere melder", "raised by another party"),
    "reason.reprocess-requested": ("opnieuw verwerken gevraagd", "re-process requested"),
    "reason.traced": ("gevolgd", "traced"),
    "reason.searched": ("gezocht", "searched"),
    "reason.exported": ("geëxporteerd", "exported"),
    "reason.signed-in": ("aangemeld", "signed in"),
    # flows (schemas.vocab.EventCode)
    "flow.referral": ("aanmelding", "referral"),
    "flow.assessment-outcome": ("inclusiebesluit", "assessment outcome"),
    "flow.care-transition": ("zorgtransitie", "care transition"),
    "flow.capacity-report": ("capaciteitsmelding", "capacity report"),
    "flow.claim": ("declaratie", "claim"),
    "flow.claim-response": ("declaratie-antwoord", "claim response"),
    "flow.consent": ("toestemming", "consent"),
    "flow.escalation": ("escalatie", "escalation"),
    "flow.escalation-answer": ("antwoord op escalatie", "escalation answer"),
    "flow.withdrawal": ("intrekking", "withdrawal"),
    "flow.response": ("antwoord", "response"),
    # audit event kinds (broker.audit.AuditKind)
    "kind.decision-permit": ("besluit: toegestaan", "decision: permitted"),
    "kind.decision-deny": ("besluit: geweigerd", "decision: denied"),
    "kind.delivery": ("aflevering", "delivery"),
    "kind.consent-change": ("toestemmingswijziging", "consent change"),
    "kind.refusal": ("weigering", "refusal"),
    "kind.compliance-search": ("verantwoordingszoekvraag", "compliance search"),
    "kind.reprocess": ("herverwerking", "re-process"),
    "kind.sign-in": ("aanmelding console", "console sign-in"),
    "kind.correction": ("correctie", "correction"),
    "kind.withdrawal": ("intrekking", "withdrawal"),
    "kind.erasure": ("vernietiging", "erasure"),
    # audit outcomes (FHIR AuditEvent.outcome)
    "outcome.success": ("gelukt (0)", "success (0)"),
    "outcome.minor-failure": ("geweigerd (4)", "denied (4)"),
    "outcome.serious-failure": ("afgewezen (8)", "refused (8)"),
    # purposes of use (schemas.vocab.PurposeOfUse)
    "purpose.TREAT": ("behandeling", "treatment"),
    "purpose.COC": ("coördinatie van zorg", "coordination of care"),
    "purpose.HPAYMT": ("betaling van zorg", "healthcare payment"),
    "purpose.HOPERAT": ("bedrijfsvoering zorg", "healthcare operations"),
    "purpose.safety": ("veiligheid", "safety"),
    "purpose.escalation": ("landelijke escalatie", "national escalation"),
    # legal bases (schemas.vocab.LegalBasis)
    "basis.consent": ("toestemming", "consent"),
    "basis.legal-obligation": ("wettelijke verplichting", "legal obligation"),
    "basis.public-task": ("publieke taak", "public task"),
    "basis.conflict-of-duties": ("conflict van plichten", "conflict of duties"),
    # escalations (schemas.vocab.escalation, broker.router.ladder.EscalationStatus)
    "esc-reason.no-payer": ("geen betaler", "no payer"),
    "esc-reason.payment-overdue": ("betaling uitgebleven", "payment overdue"),
    "esc-reason.no-bed": ("geen bed", "no bed"),
    "esc-reason.no-provider": ("geen aanbieder", "no provider"),
    "esc-reason.no-decision": ("geen inclusiebesluit", "no inclusion decision"),
    "esc-reason.no-care-start": ("geen start zorg", "care not started"),
    "esc-reason.early-end": ("vroegtijdig einde", "early end"),
    "esc-reason.stuck": ("vastgelopen", "stuck"),
    "esc-reason.other": ("anders", "other"),
    "level.regional": ("regionaal", "regional"),
    "level.national": ("landelijk", "national"),
    "state.open": ("open", "open"),
    "state.acknowledged": ("ontvangen", "acknowledged"),
    "state.assigned": ("toegewezen", "assigned"),
    "state.info-requested": ("informatie gevraagd", "information requested"),
    "state.resolved": ("opgelost", "resolved"),
    "action.acknowledge": ("ontvangst bevestigen", "acknowledge"),
    "action.assign": ("toewijzen", "assign"),
    "action.request-info": ("informatie vragen", "request information"),
    "action.move-national": ("naar landelijk", "move to national"),
    "action.resolve": ("oplossen", "resolve"),
    # claims (adapters.financing.book.ClaimStatus as the monitor counts them)
    "claim.awaiting-answer": ("wacht op antwoord", "awaiting an answer"),
    "claim.answered": ("beantwoord", "answered"),
    "claim.refused": ("afgewezen", "refused"),
    # party roles (schemas.vocab.PartyRole)
    "party.zvh": ("Zorg- en Veiligheidshuis", "Care and Safety House"),
    "party.coordinating-provider": ("coördinerend aanbieder", "coordinating provider"),
    "party.executing-provider": ("uitvoerend aanbieder", "executing provider"),
    "party.municipality": ("gemeente", "municipality"),
    "party.health-insurer": ("zorgverzekeraar", "health insurer"),
    "party.care-office": ("zorgkantoor", "care office"),
    "party.dji": ("DJI", "DJI (custodial institutions)"),
    "party.vws": ("ministerie van VWS", "Ministry of Health (VWS)"),
    "party.national-coordination": ("landelijk coördinatiepunt", "national coordination point"),
    "party.capacity-dashboard": ("landelijk dashboard", "national dashboard"),
    "party.router": ("router", "router"),
    # the sealed detail of an audit record (broker.audit.query.AuditRow.sealed_state)
    "sealed.sealed": ("verzegeld", "sealed"),
    "sealed.opened": ("geopend", "opened"),
    "sealed.unreadable": ("onleesbaar", "unreadable"),
    "sealed.erased": ("vernietigd", "erased"),
    # trace hops (broker.apps.operations.trace)
    "hop.received": ("ontvangen", "received"),
    "hop.received (re-process)": ("ontvangen (herverwerking)", "received (re-process)"),
    "hop.permitted": ("toegestaan", "permitted"),
    "hop.denied": ("geweigerd", "denied"),
    "hop.delivered": ("afgeleverd", "delivered"),
    "hop.refused": ("afgewezen", "refused"),
    "hop.consent changed": ("toestemming gewijzigd", "consent changed"),
    "hop.re-processed": ("opnieuw verwerkt", "re-processed"),
    "hop.re-process requested": ("opnieuw verwerken gevraagd", "re-process requested"),
    "hop.not sent again": ("niet nogmaals verstuurd", "not sent again"),
    "hop.searched": ("gezocht", "searched"),
    "hop.escalation": ("escalatie", "escalation"),
    "hop.parked on rejected": ("geparkeerd op rejected", "parked on rejected"),
    "hop.parked on dead-letter": ("geparkeerd op dead-letter", "parked on dead-letter"),
    # OpenID Connect refusals (broker.apps.web.oidc.SignInRefused.code)
    "oidc.unknown-provider": ("onbekende identity provider", "unknown identity provider"),
    "oidc.issuer-unreachable": ("identity provider niet bereikbaar",
                                "identity provider not reachable"),
    "oidc.state-mismatch": ("dit antwoord hoort niet bij een aanmelding in deze browser, of "
                            "de aanmelding is verlopen; begin opnieuw",
                            "this answer does not belong to a sign-in in this browser, or the "
                            "sign-in expired; start again"),
    "oidc.provider-refused": ("de identity provider weigerde", "the identity provider refused"),
    "oidc.token-exchange-failed": ("de identity provider gaf geen token af",
                                   "the identity provider handed out no token"),
    "oidc.bad-keys": ("de sleutels van de identity provider zijn onbruikbaar",
                      "the identity provider's keys are unusable"),
    "oidc.bad-token": ("ongeldig ID-token", "invalid ID token"),
    "oidc.bad-signature": ("de handtekening van het ID-token klopt niet",
                           "the ID token's signature does not verify"),
    "oidc.wrong-issuer": ("het ID-token komt van een andere uitgever",
                          "the ID token comes from another issuer"),
    "oidc.wrong-audience": ("het ID-token is voor een andere toepassing",
                            "the ID token is meant for another application"),
    "oidc.expired": ("het ID-token is verlopen", "the ID token has expired"),
    "oidc.wrong-nonce": ("het ID-token hoort niet bij deze aanmelding",
                         "the ID token does not belong to this sign-in"),
    "oidc.bad-claims": ("het ID-token bevat onaanvaardbare gegevens",
                        "the ID token holds unacceptable claims"),
    "oidc.bad-identifier": ("het ID-token noemt geen bruikbare gebruikers-id",
                            "the ID token names no usable user id"),
    "oidc.unknown-organisation": ("uw organisatie is geen partij van deze ketenbus; vraag de "
                                  "beheerder",
                                  "your organisation is not a party of this ketenbus; ask the "
                                  "administrator"),
    "oidc.no-role": ("uw organisatie geeft u geen rol in de console",
                     "your organisation gives you no role in the console"),
    "oidc.not-audited": ("de aanmelding kon niet worden vastgelegd", "the sign-in could not be "
                         "audited"),
}

MESSAGES: dict[str, dict[str, str]] = {"nl": NL, "en": EN}


def choose(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The page's language: ``?lang=``, else the cookie, else the best of Accept-Language,
    else Dutch."""
    for chosen in (query, cookie):
        if chosen in LANGUAGES:
            return str(chosen)
    best, weight = DEFAULT, 0.0
    for part in (accept or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        try:
            q = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            q = 0.0
        if lang in LANGUAGES and q > weight:
            best, weight = lang, q
    return best


def text(lang: str, key: str, **values: Any) -> str:
    """The text of ``key`` in ``lang`` with its ``{placeholders}`` filled in."""
    template = MESSAGES.get(lang, NL)[key]
    return template.format(**values) if values else template


def meaning(lang: str, group: str, code: object) -> str:
    """What a code means in ``lang``; the code itself when the catalogue does not know it."""
    if code is None or code == "":
        return ""
    pair = CODES.get(f"{group}.{code}")
    if pair is None:
        return str(code)
    return pair[0] if lang == "nl" else pair[1]


def when(lang: str, value: object, *, seconds: bool = True) -> str:
    """A moment in Dutch time: ``07-12-2026 02:19:04`` (nl), ``7 Dec 2026 02:19:04`` (en)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        local = value.astimezone(ZONE)
        clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
        if lang == "nl":
            return f"{local:%d-%m-%Y} {clock}"
        return f"{local.day} {_MONTHS_EN[local.month - 1]} {local.year} {clock}"
    if isinstance(value, date):
        return f"{value:%d-%m-%Y}" if lang == "nl" else value.isoformat()
    return "" if value is None else str(value)


def age(lang: str, value: str) -> str:
    """An age as :func:`broker.apps.monitoring.model.age_text` writes it (``3 d 4 h``), with
    the Dutch hour (``u``)."""
    return value.replace(" h", " u") if lang == "nl" else value


@pass_context
def _t(ctx: Context, key: str, **values: Any) -> str:
    return text(ctx.get("lang", DEFAULT), key, **values)


@pass_context
def _meaning(ctx: Context, group: str, code: object) -> str:
    return meaning(ctx.get("lang", DEFAULT), group, code)


@pass_context
def _when(ctx: Context, value: object, seconds: bool = True) -> str:
    return when(ctx.get("lang", DEFAULT), value, seconds=seconds)


@pass_context
def _say(ctx: Context, message: object) -> str:
    """A catalogue key in the page's language; any other message (an error the system wrote)
    as it is."""
    lang = ctx.get("lang", DEFAULT)
    key = str(message)
    return text(lang, key) if key in MESSAGES.get(lang, NL) else key


@pass_context
def _age(ctx: Context, value: str) -> str:
    return age(ctx.get("lang", DEFAULT), value)


def install(env: Any) -> None:
    """Give a Jinja environment ``t``, ``meaning``, ``say``, ``when`` and ``age`` (in the page's
    ``lang``)."""
    env.globals.update(t=_t, meaning=_meaning, say=_say, languages=LANGUAGES)
    env.filters.update(when=_when, time=_when, age=_age)


def script_messages(lang: str) -> dict[str, str]:
    """The texts the dashboard's script writes itself."""
    keys = ("dashboard.no_reports", "dashboard.stale_since", "dashboard.stale_title",
            "dashboard.none_yet", "dashboard.all_regions", "dashboard.no_history",
            "dashboard.available_now", "dashboard.stale_reports")
    return {k: text(lang, k) for k in keys}
