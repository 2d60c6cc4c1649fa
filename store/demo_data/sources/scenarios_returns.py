"""Ticket scenarios: returns, refunds, damaged/wrong items and warranty."""

from __future__ import annotations

from typing import Any

SCENARIOS: list[dict[str, Any]] = [
    {
        "key": "return_how_to",
        "group": "returns",
        "n": 9,
        "type": "question",
        "priority": ["low", "normal"],
        "tags": ["returns", "how_to"],
        "articles": ["start-return", "return-policy"],
        "macro": "start-return",
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (5, 20),
            "exclude_bulky": True,
            "returnable": True,
            "free_returns_only": True,
        },
        "subjects": ["How do I return something?", "Return {item}", "Want to send back my order"],
        "openers": [
            "Hi, I'd like to return the {item} from order {order}. It's unused. How do I do that?",
            "The {item} isn't what I expected. How can I send it back and do I have to pay for shipping?",
            "how to return?? can't find a form",
            "Hello, I want to return one item of {order}. Do I need to print a label? I have no printer.",
        ],
        "replies": [
            "Of course! Returns are done in our Returns portal: brambleandoak.example/returns. Enter {order} and your email, select the {item}, and you'll get a free prepaid label. No printer? Choose the QR code and show it at the drop-off point instead.\n\nYou have {return_window} days from delivery. Step-by-step guide: {link}",
            "You can start the return yourself in a minute at brambleandoak.example/returns – no need to wait for us. {return_shipping_sentence} Once the parcel reaches us, we check it within 3 business days and refund you. Our policy: {link2}",
        ],
        "followups": [
            "Done, dropped it off this morning.",
            "Thanks! The QR code worked at the shop.",
            "Great, easy.",
        ],
        "resolutions": [
            {
                "text": "Your return arrived and the refund of {item_paid} has been issued to your {payment}. {refund_timing}",
                "status": "returned",
                "refund": "item",
            },
            {
                "text": "Thanks for letting us know. We've received the parcel and your refund of {item_paid} is on its way. {refund_timing}",
                "status": "returned",
                "refund": "item",
            },
        ],
    },
    {
        "key": "refund_not_received",
        "group": "returns",
        "n": 10,
        "type": "question",
        "priority": ["normal"],
        "tags": ["refund_status", "refund_timing"],
        "articles": ["refund-timing"],
        "macro": "refund-timing",
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (20, 30),
            "exclude_bulky": True,
            "returnable": True,
            "refunded_before": True,
        },
        "subjects": ["Where is my refund?", "Refund not received {order}", "Still no money back"],
        "openers": [
            "I returned the {item} two weeks ago and still haven't received my refund. This is taking way too long!",
            "Hello, could you check the status of my refund for {order}? The return was delivered to you on {return_arrived}.",
            "Got the email that my refund was issued on {refund_date} but there's nothing on my account. When will it come?",
            "refund?? sent back {item} ages ago",
        ],
        "replies": [
            "I've checked: your return arrived on {return_arrived} and we issued the refund of {item_paid} on {refund_date}. You paid with {payment_name}, so {refund_timing_lc}\n\nIf it's not there after that, reply with a screenshot and I'll send you the refund reference (ARN) so your bank can trace it. Timings per payment method: {link}",
            "Thanks for your patience. The refund for the {item} ({item_paid}) was issued on {refund_date} to your {payment}. From our side it's complete – {refund_timing_lc} Card refunds sometimes appear as a reduced pending amount rather than a separate line.",
        ],
        "followups": [
            "It's there now, thanks.",
            "Still nothing. Can you send the reference?",
            "ok I'll wait a few more days",
        ],
        "resolutions": [
            "Glad it arrived! I'll close this ticket.",
            "Here's the reference for your bank: ARN 7{rand6}{rand6}. With that they can trace the refund. Let me know if they can't find it.",
            "No problem – if it hasn't arrived by the end of the week, just reply here and I'll dig further.",
        ],
    },
    {
        "key": "klarna_return_pause",
        "group": "returns",
        "n": 3,
        "type": "question",
        "priority": ["normal"],
        "tags": ["klarna", "refund_timing", "payment_reminder"],
        "articles": ["klarna", "refund-timing"],
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (20, 28),
            "payment": ["Klarna Pay in 30 days"],
            "returnable": True,
        },
        "subjects": ["Klarna reminder but I returned the item", "Klarna invoice while return in progress"],
        "openers": [
            "I sent back the {item} but now Klarna is sending me payment reminders. I don't want to pay for something I returned!",
            "Klarna wants me to pay {total} by Friday but my return is on its way to you. What should I do?",
        ],
        "replies": [
            'You don\'t need to pay for the returned item. In the Klarna app choose "Report a return" – that pauses your payment while we process the return. As soon as we issue the refund, Klarna adjusts your balance immediately. More: {link}',
        ],
        "followups": ["Done, the payment is paused now. Thanks.", "Reported it. Has the parcel arrived?"],
        "resolutions": [
            {
                "text": "The return has arrived and I've issued the refund of {item_paid}. Klarna should already show your updated balance.",
                "status": "returned",
                "refund": "item",
            }
        ],
    },
    {
        "key": "return_window_expired",
        "group": "returns",
        "n": 5,
        "type": "question",
        "priority": ["normal"],
        "tags": ["returns", "return_window", "declined"],
        "articles": ["return-policy", "oak-club"],
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (38, 50),
            "exclude_bulky": True,
            "returnable": True,
            "member": False,
        },
        "subjects": ["Return portal says not eligible", "Can I still return this?", "Return after 30 days"],
        "openers": [
            "The returns portal won't let me return the {item}. I know it's been a bit more than 30 days but it's still in the box.",
            "Hi, I was travelling and couldn't send the {item} back in time. Could you make an exception?",
            "Why can't I return my {item}? It's brand new!",
        ],
        "replies": [
            "I understand, and thanks for explaining. The {item} was delivered on {delivered}, so the 30-day return window ended on {window_end}. The portal blocks returns after that date automatically. (Oak Club members get 60 days, but there was no active membership on this order.)\n\nIf anything is faulty you're still covered by our 2-year guarantee. Policy: {link}",
            "I'm sorry, the return window for {order} closed on {window_end} – 30 days after delivery. I can't override the portal for change-of-mind returns. If the {item} has a defect, that's a different story: send us a photo and we'll handle it under warranty.",
        ],
        "followups": [
            "That's disappointing but I understand.",
            "Ok, I'll sell it then.",
            "Seriously? 5 days late and no exception?",
        ],
        "resolutions": [
            "Thanks for understanding. Let me know if you have any other questions.",
            "Understood – sorry we couldn't help with a return this time.",
            "I get that it's frustrating. As a one-time goodwill gesture I've opened the portal for this order until the end of the week – you can now create the label.",
        ],
    },
    {
        "key": "non_returnable_bedding",
        "group": "returns",
        "n": 3,
        "type": "question",
        "priority": ["low", "normal"],
        "tags": ["returns", "non_returnable", "hygiene"],
        "articles": ["non-returnable"],
        "macro": "non-returnable",
        "order": {"stage": "delivered", "final": "delivered", "age": (5, 15), "skus": ["TX-402", "AP-413"]},
        "subjects": ["Return {item} – portal says not possible", "Can't return the {item}"],
        "openers": [
            "I opened the {item} and the colour is different from the website. The portal says I can't return it?",
            "Why is the {item} not returnable? I only took it out of the packaging to look at it.",
        ],
        "replies": [
            "For hygiene reasons, {non_returnable_reason} can't be returned once opened, unless they're faulty or not what you ordered. That's why the portal blocks it. If the colour really differs from the product photos, send me a photo in daylight next to the label and I'll take a look. Policy: {link}",
        ],
        "followups": ["Photo attached. It's much greyer than online.", "Ok, I'll keep it then."],
        "resolutions": [
            "Thanks for the photo. The shade is within our normal dye-lot variation for stonewashed linen, so I'm afraid I can't accept the return. Sorry I don't have better news.",
            "Understood – thanks for your understanding, and enjoy it!",
        ],
    },
    {
        "key": "bulky_return_fee",
        "group": "returns",
        "n": 3,
        "type": "question",
        "priority": ["normal"],
        "tags": ["bulky", "pickup_fee", "refund_amount"],
        "articles": ["bulky-returns", "partial-refunds"],
        "macro": "bulky-pickup",
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (25, 35),
            "bulky": True,
            "refunded_before": True,
        },
        "subjects": ["€49 deducted from my refund??", "Refund for {item} too low"],
        "openers": [
            "You collected the {item} last week and I got my refund but €49 less! Nobody told me about this.",
            "Why is my refund for {order} €49 lower than what I paid for the {item}?",
        ],
        "replies": [
            "I understand the surprise. For bulky items we collect, a €49 pickup fee is deducted from the refund – unless the item was faulty or wrong. It's mentioned in the return step in the portal and in our policy: {link}. Your refund of {item_paid_less49} was issued on {refund_date}.",
        ],
        "followups": ["I see. I missed that.", "Fine, but it should be more visible."],
        "resolutions": [
            "Thanks for the feedback – I've passed it to our web team to make the fee clearer in the portal.",
            "Thanks for understanding. Anything else I can help with?",
        ],
    },
    {
        "key": "exchange_size",
        "group": "returns",
        "n": 6,
        "type": "task",
        "priority": ["low", "normal"],
        "tags": ["exchange", "size"],
        "articles": ["exchanges"],
        "macro": "exchange-size",
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (3, 10),
            "skus": ["AP-414", "AP-411", "AP-412"],
            "countries": ["NL", "BE", "DE", "FR", "AT", "UK", "IE", "DK", "ES", "IT", "LU"],
        },
        "subjects": ["Exchange for a bigger size", "{item} too small", "Swap size {size}"],
        "openers": [
            "The {item} in size {size} is too small. Can I swap it for {new_size}?",
            "hi the {item} are too tight, i need {new_size}. how do I exchange",
            "Love the {item}, but {size} is a bit snug with thick socks. Could I get {new_size} instead?",
        ],
        "replies": [
            "Easy – apparel and boots can be exchanged for free. In the Returns portal choose Exchange for the {item}, pick size {new_size}, and print the label. We ship {new_size} as soon as the carrier scans your return parcel, so you don't have to wait for it to reach us. Guide: {link}",
            "Happy to help. Size {new_size} is in stock, so please use the Exchange option in the Returns portal – it reserves {new_size} for you straight away. One exchange per item is possible.",
        ],
        "followups": ["Sent it back today.", "Thanks, got the new ones, they fit perfectly."],
        "resolutions": [
            "Great! Your {new_size} is on its way: tracking {tracking2}.",
            "Happy to hear they fit. Enjoy the trails!",
        ],
    },
    {
        "key": "wrong_item_sent",
        "group": "returns",
        "n": 5,
        "type": "incident",
        "priority": ["normal", "high"],
        "tags": ["wrong_item", "warehouse_error"],
        "articles": ["wrong-item"],
        "macro": "wrong-item",
        "order": {"stage": "delivered", "final": "delivered", "age": (2, 5), "exclude_bulky": True},
        "subjects": [
            "Wrong item received",
            "This is not what I ordered",
            "Got {wrong_item} instead of {item}",
        ],
        "openers": [
            "I ordered the {item} but received a {wrong_item}. Please send the correct one.",
            "Opened my parcel and it's a {wrong_item}?? I ordered {item}. Order {order}.",
            "Hallo, I think there is a mistake. In the box is {wrong_item}, not the {item} I paid for. What I must do?",
        ],
        "internal": [
            "Picking error confirmed – adjacent bin locations for {sku}. Reported to warehouse lead."
        ],
        "replies": [
            "I'm so sorry about that – a picking error on our side. I've sent the correct {item} by Express at no cost (tracking {tracking2}). For the {wrong_item}, I'm emailing you a free return label; please send it back within 14 days. More: {link}",
            "Thanks for the photo, you're right. The correct {item} is on its way today by Express. You'll receive a prepaid return label for the {wrong_item} separately – no cost to you.",
        ],
        "followups": [
            "Got it, thanks for the quick fix.",
            "The right one arrived. Dropped off the other one.",
        ],
        "resolutions": [
            "Great, thanks for sending the other item back. Sorry again for the mix-up!",
            "Perfect. Enjoy your {item}!",
        ],
    },
    {
        "key": "wrong_size_sent",
        "group": "returns",
        "n": 3,
        "type": "incident",
        "priority": ["normal"],
        "tags": ["wrong_item", "wrong_size"],
        "articles": ["wrong-item"],
        "macro": "wrong-item",
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (2, 5),
            "skus": ["AP-414", "AP-411", "AP-412", "AP-413"],
        },
        "subjects": ["Wrong size delivered", "Ordered {size}, received {wrong_size}"],
        "openers": [
            "I ordered the {item} in {size} and the label says {wrong_size}. My order confirmation clearly says {size}.",
            "Wrong size in the box! {wrong_size} instead of {size}. Need the right one before my trip next week.",
        ],
        "replies": [
            "Sorry about that – the label on the box was right but the item inside wasn't. I've shipped {size} by Express today (tracking {tracking2}), and a free return label for the {wrong_size} is in your inbox. This isn't an exchange, so your one free exchange is still available if needed. Details: {link}",
        ],
        "followups": ["Thank you, received. Fits!", "Arrived just in time, thanks."],
        "resolutions": ["Great, have a fantastic trip!"],
    },
    {
        "key": "damaged_on_arrival",
        "group": "returns",
        "n": 10,
        "type": "incident",
        "priority": ["normal", "high"],
        "tags": ["damaged", "transport_damage", "replacement"],
        "articles": ["damaged-item"],
        "macro": "damaged-replacement",
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (1, 4),
            "skus": [
                "KI-303",
                "KI-302",
                "IF-504",
                "LU-604",
                "OF-105",
                "KI-304",
                "LU-605",
                "CA-206",
                "OF-103",
            ],
        },
        "subjects": ["Item arrived broken", "Damaged delivery {order}", "{item} broken on arrival"],
        "openers": [
            "The {item} arrived broken. The box was crushed on one side. Photos attached. Very disappointed, this was supposed to be a gift.",
            "Hi, unfortunately the {item} from {order} has a big crack. Can you send a new one?",
            "My {item} came smashed. Not happy.",
            "Hello team, today I received {order}. The {item} is damaged (see pictures). The outer box also has a hole. Please advise.",
        ],
        "replies": [
            "I'm really sorry your {item} arrived damaged, and thank you for the photos – that's all we need. {damage_return_note} A replacement is on its way by Express at no cost: tracking {tracking2}.\n\nIf you'd rather have a refund instead, just say so. Our policy: {link}",
            "How annoying – sorry! I've registered the transport damage with {carrier}. You can choose a free replacement (sent by Express) or a full refund. {damage_return_note}",
        ],
        "followups": [
            "Replacement please.",
            "Thanks, the new one arrived in one piece!",
            "I'd prefer a refund, I bought it elsewhere already.",
        ],
        "resolutions": [
            "Done – the replacement is on its way (tracking {tracking2}). Sorry again for the trouble.",
            "Wonderful, glad the new one made it safely. Sorry again for the trouble.",
            {
                "text": "No problem – I've refunded {item_paid} to your {payment}. {refund_timing}",
                "status": "refunded",
                "refund": "item",
            },
        ],
    },
    {
        "key": "damaged_bulky",
        "group": "returns",
        "n": 3,
        "type": "incident",
        "priority": ["high"],
        "tags": ["damaged", "bulky", "partial_refund"],
        "articles": ["damaged-item", "bulky-delivery"],
        "order": {"stage": "delivered", "final": "delivered", "age": (1, 4), "bulky": True},
        "subjects": ["Scratch on new {item}", "Damage on furniture delivery"],
        "openers": [
            "The {item} was delivered yesterday and after the crew left we found a deep scratch along one side. Photos attached.",
            "One leg of the {item} has a dent. We didn't see it until we unwrapped everything. What now?",
        ],
        "replies": [
            "Thank you for reporting it so quickly and for the photos. You're well within the 7 days. We can either replace the {item} – Van der Berg will deliver the new one and take the damaged one away at no cost – or, if you'd like to keep it, offer a partial refund of {goodwill} for the cosmetic damage. What do you prefer? Policy: {link}",
        ],
        "followups": [
            "We'll keep it with the partial refund, the scratch is on the back.",
            "Please replace it.",
        ],
        "resolutions": [
            {
                "text": "Done – {goodwill} has been refunded to your {payment}. {refund_timing} Enjoy the {item}!",
                "refund": "goodwill",
            },
            "Van der Berg will contact you within 2 business days to schedule the exchange delivery. The damaged one leaves with them.",
        ],
    },
    {
        "key": "partial_refund_promo",
        "group": "returns",
        "n": 3,
        "type": "question",
        "priority": ["low"],
        "tags": ["partial_refund", "promo_code", "refund_amount"],
        "articles": ["partial-refunds", "promo-codes"],
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (20, 30),
            "promo": "SPRING15",
            "min_items": 2,
            "refunded_before": True,
        },
        "subjects": ["Refund lower than item price", "Wrong refund amount"],
        "openers": [
            "I returned the {item} which costs {price} but only got {item_paid} back. Where's the rest?",
            "The refund for {order} is less than the price. Please check.",
        ],
        "replies": [
            "Your order used the code SPRING15, and a discount is spread across all items in the order. So you're refunded what you actually paid for the {item}: {item_paid} instead of the list price of {price}. The rest of your order keeps its discount – we don't take it back. More: {link}",
        ],
        "followups": ["Ah right, that makes sense.", "ok understood"],
        "resolutions": ["Thanks for checking with us. Have a great day!"],
    },
    {
        "key": "return_from_non_eu",
        "group": "returns",
        "n": 3,
        "type": "question",
        "priority": ["normal"],
        "tags": ["returns", "international", "return_postage"],
        "articles": ["returns-outside-eu"],
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (8, 20),
            "countries": ["US", "CH", "NO"],
            "exclude_bulky": True,
            "returnable": True,
        },
        "subjects": ["Return from {country} – who pays?", "No free label for my return?"],
        "openers": [
            "I'm in {country} and the portal doesn't give me a free label. Do I really have to pay to send back the {item}?",
            "How do I return the {item} from {country}? Do I need customs forms?",
        ],
        "replies": [
            'From {country}, returns are sent by you and the postage is yours, unless the item is faulty or wrong. Register the return in the portal: it creates a commercial invoice marked "Returned goods". Attach it to the outside of the parcel, use a tracked service, and send it to our Returns Centre in Venlo. We refund the item plus the duties you paid at checkout. Guide: {link}',
        ],
        "followups": ["OK, sent with tracking. Thanks.", "Shipped it, tracking attached."],
        "resolutions": [
            {
                "text": "Your return has arrived. I've refunded {item_paid} plus the duties for it to your {payment}. {refund_timing}",
                "status": "returned",
                "refund": "item",
            }
        ],
    },
    {
        "key": "gift_return",
        "group": "returns",
        "n": 3,
        "type": "question",
        "priority": ["low"],
        "tags": ["returns", "gift", "store_credit"],
        "articles": ["gift-returns"],
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (8, 20),
            "exclude_bulky": True,
            "returnable": True,
        },
        "subjects": ["Returning a present", "Gift return without telling the sender"],
        "openers": [
            "I received the {item} as a birthday present but I already have one. Can I return it without my aunt finding out?",
            "Got a gift from your shop. Can I exchange it for something else? The order number on the note is {order}.",
        ],
        "replies": [
            'Absolutely. In the Returns portal choose "I received this as a gift", enter the order number from the gift note and your own email address. The purchaser isn\'t notified. Gift returns are refunded as a gift card emailed to you, valid for 3 years, so you can pick something else. Details: {link}',
        ],
        "followups": ["Perfect, sent it back today.", "Dropped it off at the parcel shop, thanks!"],
        "resolutions": [
            {
                "text": "Your gift card for {item_paid} has been sent to your email. Happy shopping!",
                "status": "returned",
                "refund": "item_giftcard",
            }
        ],
    },
    {
        "key": "value_deduction",
        "group": "returns",
        "n": 2,
        "type": "problem",
        "priority": ["normal"],
        "tags": ["value_deduction", "used_item", "returns"],
        "articles": ["partial-refunds"],
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (20, 30),
            "skus": ["AP-414", "CA-201", "CA-204"],
            "refunded_before": True,
        },
        "subjects": ["Deduction on my refund", "You deducted money for 'signs of use'?"],
        "openers": [
            "You've deducted 40% of the {item} because it's \"used\". I only tried it once!",
            "Not ok: refund reduced because of wear. I want the full amount.",
        ],
        "internal": [
            "Return photos: muddy outsole / visible wear. Deduction 40% per policy. Offered send-back."
        ],
        "replies": [
            "I understand this is disappointing. When the {item} arrived, our returns team found clear signs of outdoor use (photos attached), which is why they applied a value deduction. If you don't agree, we can cancel the deduction and send the {item} back to you free of charge instead – just let me know. Policy: {link}",
        ],
        "followups": ["Send it back then.", "Fine, I'll accept the deduction."],
        "resolutions": [
            "Okay – the {item} is on its way back to you at no cost: tracking {tracking2}.",
            "Thanks for letting me know. The refund stands as issued.",
        ],
    },
    {
        "key": "return_label_expired",
        "group": "returns",
        "n": 2,
        "type": "task",
        "priority": ["low"],
        "tags": ["return_label", "returns"],
        "articles": ["start-return"],
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (18, 25),
            "exclude_bulky": True,
            "returnable": True,
            "countries": ["NL", "BE", "DE", "FR", "UK"],
        },
        "subjects": ["Return label doesn't work anymore", "Drop-off point rejected my label"],
        "openers": [
            "The post office says my return label is expired. I made it 3 weeks ago. Can I get a new one?",
            "My return QR code isn't accepted. Order {order}.",
        ],
        "replies": [
            "Return labels are valid for 14 days after you create them, so yours has expired. No problem – I've generated a new label and sent it to your email. Your return window is still open, so go ahead and drop it off. Guide: {link}",
        ],
        "followups": ["Works, thanks!"],
        "resolutions": [
            {
                "text": "Received your return – refund of {item_paid} issued. {refund_timing}",
                "status": "returned",
                "refund": "item",
            }
        ],
    },
    {
        "key": "warranty_tent_pole",
        "group": "returns",
        "n": 3,
        "type": "problem",
        "priority": ["normal"],
        "tags": ["warranty", "tent", "spare_part"],
        "articles": ["warranty", "tent-care"],
        "macro": "warranty-info-request",
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (120, 500),
            "skus": ["CA-201", "CA-202"],
        },
        "subjects": ["Tent pole snapped", "Broken pole on {item}"],
        "openers": [
            "One of the poles of my {item} snapped while pitching in light wind. I bought it {months_ago} months ago. Is this covered?",
            "pole broke on first night of our trip. Need a replacement asap.",
        ],
        "replies": [
            "Sorry to hear that! Ridgeline tents have a 3-year warranty, so you're covered. Could you send a photo of the broken section and tell me which pole (the colour code on the end cap)? I'll send a replacement section straight away. Warranty details: {link}",
        ],
        "followups": ["Photo attached – it's the grey main pole, second section.", "It's the short red one."],
        "resolutions": [
            "Thanks! A replacement pole section is on its way, free of charge (tracking {tracking2}). Tip: assemble the poles section by section so the shock cord doesn't snap them together."
        ],
    },
    {
        "key": "warranty_cast_iron",
        "group": "returns",
        "n": 3,
        "type": "problem",
        "priority": ["low", "normal"],
        "tags": ["warranty", "cast_iron", "care"],
        "articles": ["cast-iron-care", "warranty"],
        "order": {"stage": "delivered", "final": "delivered", "age": (60, 400), "skus": ["KI-301"]},
        "subjects": ["Cast iron skillet problem", "Skillet – warranty question"],
        "openers": ["(variant)"],
        "replies": ["(variant)"],
        "followups": ["(variant)"],
        "resolutions": ["(variant)"],
        "variants": [
            {
                "subjects": ["Rust on my skillet", "Cast iron pan is rusty – warranty?"],
                "openers": [
                    "My cast iron skillet has orange rust all over after a few months. Is this a defect? I want a new one under the lifetime warranty.",
                    "Help, the skillet went in the dishwasher (my flatmate...) and now it's rusty and dull.",
                ],
                "replies": [
                    "Rust on cast iron is only on the surface and easy to fix: scrub it off with steel wool, wash, dry it on the hob and re-season it in the oven at 230 °C for an hour. The lifetime warranty covers cracking and warping; rust from the dishwasher or soaking is a care issue and isn't covered. Step-by-step guide: {link}"
                ],
                "followups": [
                    "Re-seasoned it as you said and it's like new. Thanks!",
                    "Ok, I'll try the re-seasoning.",
                ],
                "resolutions": [
                    "Great to hear it's back in action!",
                    "Good luck – if the rust keeps coming back after re-seasoning, send us a photo.",
                ],
            },
            {
                "subjects": ["Skillet cracked", "Crack in cast iron pan"],
                "openers": [
                    "There's a hairline crack across the bottom of my skillet. I only use it on gas.",
                    "My skillet cracked on the hob. Lifetime warranty, right?",
                ],
                "replies": [
                    "A crack is exactly what the lifetime warranty is for. Could you send a photo of the crack and of the bottom of the pan? Then I'll arrange a replacement. Warranty details: {link2}"
                ],
                "followups": ["Photos attached."],
                "resolutions": [
                    "Thanks for the photos – the crack is clearly a material fault. A new skillet is on its way (tracking {tracking2}); no need to send the old one back."
                ],
            },
        ],
    },
    {
        "key": "warranty_headlamp_battery",
        "group": "returns",
        "n": 2,
        "type": "problem",
        "priority": ["normal"],
        "tags": ["warranty", "battery"],
        "articles": ["battery-care", "warranty"],
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (200, 600),
            "skus": ["CA-206", "LU-605", "LU-607"],
        },
        "subjects": ["Battery doesn't last anymore", "{item} battery capacity dropped"],
        "openers": [
            "My {item} used to last for ages on a charge, now it's less than half. It's not two years old yet.",
            "Battery of my {item} seems to be dying. Warranty?",
        ],
        "replies": [
            "Batteries are covered under warranty if they hold less than 70% of their original capacity within the warranty period. Could you fully charge it and tell me how long it runs on the low setting (or, for Lumo devices, the battery health in the app under Settings > Battery)? Then I'll decide on a replacement. Background: {link}",
        ],
        "followups": ["Battery health says 58%.", "Runs about 12 hours on low now, used to be 40."],
        "resolutions": [
            "That's well below 70%, so it's covered. A replacement is on its way (tracking {tracking2}); you'll get a prepaid label for the old one – please don't put lithium batteries in household waste."
        ],
    },
    {
        "key": "warranty_rain_jacket",
        "group": "returns",
        "n": 2,
        "type": "problem",
        "priority": ["normal"],
        "tags": ["warranty", "apparel", "waterproof"],
        "articles": ["rain-jacket-care", "warranty"],
        "order": {"stage": "delivered", "final": "delivered", "age": (150, 500), "skus": ["AP-412"]},
        "subjects": ["Rain jacket not waterproof", "Stormline leaks on shoulders"],
        "openers": [
            "My Stormline rain shell gets soaked on the shoulders and arms. I'm wet underneath after an hour of rain. Not what I paid {price} for.",
            "jacket wets through now, is that normal after a year?",
        ],
        "replies": [
            'The outer fabric darkening ("wetting out") usually means the water-repellent finish has worn off, not that the membrane leaks. Could you try this first: wash at 30 °C with a technical wash, then tumble dry on low for 20 minutes to reactivate the finish. If water still comes through at a seam, send a photo and we\'ll handle it under warranty. Guide: {link}',
        ],
        "followups": [
            "Washed and dried it, beads off again. Thanks!",
            "Did that, still leaking at the shoulder seam. Photo attached.",
        ],
        "resolutions": [
            "Great, glad that did it!",
            "Thanks – that's a seam tape failure, covered by warranty. A new jacket in the same size is on its way (tracking {tracking2}) with a free return label for the old one.",
        ],
    },
    {
        "key": "teak_grey_complaint",
        "group": "returns",
        "n": 2,
        "type": "question",
        "priority": ["low"],
        "tags": ["teak", "patina", "care", "warranty"],
        "articles": ["teak-care"],
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (200, 400),
            "skus": ["OF-101", "OF-102"],
        },
        "subjects": ["Teak turned grey", "Bench lost its colour – defect?"],
        "openers": [
            "Our {item} has turned completely grey after one summer. It looked golden on delivery. Is this a quality problem?",
            "the teak is grey and a bit rough now. warranty?",
        ],
        "replies": [
            "That silver-grey colour is teak's natural patina – it doesn't affect strength, and it isn't a defect, so it's not a warranty case. If you prefer the honey colour: clean it with soapy water and a soft brush, let it dry, and apply a thin coat of teak oil twice a year. Care guide: {link}",
        ],
        "followups": ["Ah okay, good to know. Will try the oil.", "Thanks, we actually like the grey now."],
        "resolutions": ["Enjoy your garden!"],
    },
    {
        "key": "warranty_bench_crack",
        "group": "returns",
        "n": 1,
        "type": "problem",
        "priority": ["high"],
        "tags": ["warranty", "teak", "structural", "bulky"],
        "articles": ["warranty", "teak-care"],
        "order": {"stage": "delivered", "final": "delivered", "age": (700, 900), "skus": ["OF-101"]},
        "subjects": ["Crack through the leg of our teak bench"],
        "openers": [
            "There's a crack running through the back left leg of our {item}, right at the joint with the seat frame. It wobbles now. We've had it just over two years. Photos attached."
        ],
        "replies": [
            "Thank you for the clear photos. A crack through a leg joint is structural, not the normal hairline end-checking of teak, and teak frames have a 5-year warranty – so you're covered. Because it wobbles, please don't sit on it for now. I'll arrange a replacement bench via Van der Berg Logistics, who will also take the old one away. Warranty info: {link}",
        ],
        "followups": ["Thank you, that's great service."],
        "resolutions": [
            "You're welcome! Van der Berg will call you to schedule delivery of the new bench and collection of the old one."
        ],
    },
    {
        "key": "missing_parts",
        "group": "returns",
        "n": 3,
        "type": "task",
        "priority": ["normal"],
        "tags": ["missing_parts", "assembly", "spare_part"],
        "articles": ["missing-item"],
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (2, 10),
            "skus": ["IF-503", "OF-103", "OF-106", "CA-202"],
        },
        "subjects": ["Missing screws", "Part missing from {item}", "Can't assemble – part B missing"],
        "openers": [
            "Assembling the {item} and part {part_no} (the small screws bag) is missing. Checked everywhere.",
            "Half way through assembly of {item}. Missing part {part_no}. Can you send it?",
        ],
        "replies": [
            "Sorry about that! Small parts are sometimes taped inside the box or a frame tube – worth a quick look. If it's really not there, no problem: I've sent part {part_no} free of charge by post (tracking {tracking2}). More info: {link}",
        ],
        "followups": ["Found nothing, thanks for sending it.", "Received, all assembled now."],
        "resolutions": ["Great, enjoy your {item}!"],
    },
]
