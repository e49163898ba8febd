# The RFC0008 zendNotificatie rules (the same checks, in the same order, as
# policies/iwlz/notificatie.yaml without the strict-input checks), for bench/bench_policy.py.
# Data (tables) come from the same catalogue files, converted by the bench.
package rfc0008

n := input.args.notificatieInput

test_only(id_type, id) if {
	some row in data.alleen_in_test
	row.id_type == id_type
	row.id == id
}

afzender_type_ok if {
	some row in data.instanties
	row.instantie_type == input.token.instantie_type
	row.id_type == n.afzenderIDType
}

afzender_id_ok if {
	n.afzenderIDType == input.token.identifier_type
	n.afzenderID == input.token.identifier
	not test_only(n.afzenderIDType, n.afzenderID)
}

event_type_ok if data.notificatietypen[n.eventType].afzender == input.token.instantie_type

ontvanger_ok if data.notificatietypen[n.eventType].ontvanger == n.ontvangerIDType

ontvanger_is_route if {
	n.ontvangerIDType == input.route.deelnemer_id_type
	n.ontvangerID == input.route.deelnemer_id
	not test_only(n.ontvangerIDType, n.ontvangerID)
}

bound_event if {
	some row in data.gebonden_afzenders
	row.event_type == n.eventType
}

bound_sender_ok if not bound_event

bound_sender_ok if {
	some row in data.gebonden_afzenders
	row.event_type == n.eventType
	row.id_type == n.afzenderIDType
	row.id == n.afzenderID
}

decision := {"allow": false, "reason": "instantie_type claim not found"} if {
	not input.token.instantie_type
} else := {"allow": false, "reason": "afzender_type is not valid"} if {
	not afzender_type_ok
} else := {"allow": false, "reason": "afzender_id is not valid"} if {
	not afzender_id_ok
} else := {"allow": false, "reason": "event_type is not valid"} if {
	not event_type_ok
} else := {"allow": false, "reason": "ontvanger is not valid"} if {
	not ontvanger_ok
} else := {"allow": false, "reason": "ontvanger is not valid"} if {
	not ontvanger_is_route
} else := {"allow": false, "reason": "afzender_id is not valid"} if {
	not bound_sender_ok
} else := {"allow": true}
