"""Which sources a question must reach, whatever the router chose (product-level routing rules).

The router picks agents from their manifests; a few kinds of question need a source the router
may miss, and missing it costs the whole answer:

- a policy question ("can she still return it?", "do we cover import fees?") always reaches the
  knowledge base, even when the router only picked the order system;
- a question about the ticket itself (summary, last comment, what was promised) reaches the ticket;
- when the agents that ran found nothing usable, the knowledge base is asked in the same turn.

The cues are deliberately narrow (high precision): they only add a source, never remove one.
"""

from __future__ import annotations

import re

# Eligibility / rule questions: the answer is a policy even when it is about this order.
POLICY_CUE = re.compile(
    r"\b(polic(y|ies)|rules?|allowed|eligible|entitled|deadline|window|"
    r"can (she|he|they|we|i|the customer|cust|customers)|could (she|he|they|we)|"
    r"(is|are) (she|he|they|we|customers?) (allowed|able|eligible|entitled)|"
    r"do(es)? (we|she|he|they) (cover|refund|charge|offer|ship|accept|pay|reimburse|get|have to)|"
    r"still (return|cancel|exchange|change|claim|get)|"
    r"how long (do|does|will|until|is|are|has|have|did)|how many (days|weeks|months)|within how|how soon|"
    r"when (will|should|does|do|can|would) [\w' ]{0,30}(show|arrive|land|appear|come|be back|reach|get)|"
    r"(is|are) (he|she|they|we) still (within|in time|eligible|able)|"
    r"free (return|shipping|delivery|label)|(is|are) (shipping|returns?|delivery|postage) free|"
    r"what happens (if|when)|what do we do (if|when)|"
    r"(is|are) (this|it|that|they|these) covered|covered (by|under)|"
    r"last day|too late|in time|(come|go|send|sent|be sent|be) back|"
    r"why (did|was|were|is|has|does) (he|she|they|it|we|the customer)\b[\w\s]{0,20}\b"
    r"(pay|paid|charg\w*|get|got|receiv\w*|see|show)|"
    r"(how|where) (do|does|can|should|would|will) (she|he|they|i|we|the customer|cust|customers|you) "
    r"(start|begin|get|request|return|cancel|change|claim|apply|find|send|register|reset|rebook|book)|"
    r"should (ups|dhl|dpd|postnl|the carrier|the courier|they|we) (have )?(charg\w*|collect\w*)|"
    r"darf|dürfen|kann (sie|er|man)|wie lange|frist|kostenlos)\b",
    re.IGNORECASE,
)
# Questions answered by the ticket's own conversation.
TICKET_CUE = re.compile(
    r"\b(summar(y|ise|ize)|recap|tl;?dr|sum up|"
    r"(last|latest|most recent|previous|first) (comment|reply|message|response|email|note)|"
    r"(customer|cust|she|he|they|requester) (say|said|write|wrote|ask|asked|want|wants|need|needs|"
    r"mention|mentioned|complain|complained)|"
    r"what (did|have|has) (we|i|my colleague|the agent|the previous agent|our team|you guys|anyone) "
    r"((already|just|previously|so far) )?"
    r"(tell|told|say|said|write|wrote|offer|offered|promise|promised|do|done|try|tried)|"
    r"(last|latest) (thing|one|update|word)|said (on|in) (here|this|the ticket|the thread)|"
    r"promised?|anyone (replied|answered|responded)|replied (yet|already)|"
    r"what did (?!(the )?(customer|cust|she|he|they|you|it)\b)[a-z]+ (tell|told|say|said|write|wrote|offer|promise)|"
    r"zusammenfass\w*|letzte (nachricht|antwort|kommentar))\b",
    re.IGNORECASE,
)


# The question is about this customer's own case ("can SHE still return IT?"): a policy answer
# needs this order's facts too (delivery date, payment method, destination).
ABOUT_THIS_CASE = re.compile(
    r"\b(she|he|they|her|his|their|him|them|it|this order|the order|this one|this customer|"
    r"the customer|cust|customer's|sie|er|ihr|ihre|seine)\b",
    re.IGNORECASE,
)


# "this stove", "this one", "it": the ticket's product, when the ticket names one.
THIS_PRODUCT = re.compile(
    r"\b(it|its|this one|that one|(this|that|the) (?!order|ticket|case|customer|cust|week|month|year|time|"
    r"refund|return|parcel|package|shipment|delivery|invoice|payment|charge|code|account|one\b)[a-z]+)\b",
    re.IGNORECASE,
)


# What a catalogue answers about a product (and a Help Center article rarely does).
PRODUCT_ATTRIBUTE = re.compile(
    r"\b(stock|available|availability|back in|price|prices|cost|costs|how much|warranty|guarantee|"
    r"specs?|weight|weigh|heavy|size|sizes|dimensions?|measure\w*|battery|range|made of|material|"
    r"colou?rs?|ip ?\d\d|ip rating|waterproof|rain|capacity|power|watts?|lumens?|bright\w*|slope|"
    r"boil\w*|litre|liter|lengths?|fits?|compatible|wi-?fi|ghz|care|clean\w*|wash\w*|max\w*)\b",
    re.IGNORECASE,
)


def mentions_this_product(text: str) -> bool:
    """'what range does this one have?': a catalogue attribute of the product the ticket names."""
    return bool(THIS_PRODUCT.search(text or "")) and bool(PRODUCT_ATTRIBUTE.search(text or ""))


def is_about_this_case(text: str) -> bool:
    return bool(ABOUT_THIS_CASE.search(text or ""))


# Fields only the order system holds: with an order on the ticket, the order agent answers.
ORDER_CUE = re.compile(
    r"\b(tracking|track (no|number|code|link)|carrier|courier|order status|status of (the|this|her|his) order|"
    r"(did|has|have) (she|he|they|the customer|cust) (buy|bought|order|ordered|purchase|purchased|pay|paid)|"
    r"how many [a-z ]{0,30}(did|has|have) (she|he|they)|paid (with|by)|pay(ing)? with|payment method|"
    r"promo code (on|used)|sendungsnummer|bestellstatus)\b",
    re.IGNORECASE,
)


def is_order_question(text: str) -> bool:
    return bool(ORDER_CUE.search(text or ""))


def is_policy_question(text: str) -> bool:
    return bool(POLICY_CUE.search(text or ""))


def is_ticket_question(text: str) -> bool:
    return bool(TICKET_CUE.search(text or ""))


# Turns that need no source: thanks, greetings, "what can you do?". Everything else a support
# agent types with a ticket open is a question to answer or to decline.
CONVERSATIONAL = re.compile(
    r"^\W*(thanks?( you)?|thx|ty|cheers|great|perfect|ok(ay)?|cool|got it|nice|awesome|danke|"
    r"hi|hello|hey|hallo|good (morning|afternoon|evening)|bye|"
    r"that'?s (all|it|great|helpful)|never ?mind|"
    r"what can you do|who are you|what are you|how do(es)? (you|this|it) work|help)\b[\w\s,.!?']{0,30}$",
    re.IGNORECASE,
)


def is_conversational(text: str) -> bool:
    return bool(CONVERSATIONAL.search((text or "").strip()))
