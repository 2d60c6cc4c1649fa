"""Ticket scenarios: payments, promo codes, gift cards, invoices, membership and subscriptions."""

from __future__ import annotations

from typing import Any

SCENARIOS: list[dict[str, Any]] = [
    {
        "key": "double_charge_pending",
        "group": "billing",
        "n": 8,
        "type": "question",
        "priority": ["normal", "high"],
        "tags": ["double_charge", "authorisation", "pending"],
        "articles": ["double-charge"],
        "macro": "double-charge-auth",
        "order": {
            "stage": "shipped",
            "final": "delivered",
            "age": (1, 3),
            "payment": ["Visa", "Mastercard", "American Express", "Apple Pay", "Google Pay"],
        },
        "subjects": ["Charged twice!", "Double payment for {order}", "Two charges on my card"],
        "openers": [
            "I've been charged TWICE for order {order}. {total} two times on my {payment}. Fix this immediately.",
            "Hi, I see two amounts of {total} on my banking app for one order. Is this a mistake?",
            "My payment failed the first time so I tried again, now there are two charges. Did I order twice?",
            "double charge on my card, please refund one",
        ],
        "replies": [
            "I understand the worry. I've checked, and we've captured {total} only once for {order}. The second amount is the authorisation (reservation) your bank made when you ordered – it shows as pending and disappears by itself within 3–7 business days, depending on your bank. If both lines are still there and marked as booked after 7 business days, send me a screenshot and I'll sort it out. Explanation: {link}",
            "There's only one order and one payment on our side. The other amount is a pending reservation from the first attempt or from the authorisation at checkout; your bank releases it automatically within 3–7 business days. Please don't open a dispute for a pending amount – it slows everything down.",
        ],
        "followups": [
            "OK the second one is gone now. Thanks.",
            "It's been 5 days and it's still there, screenshot attached.",
            "Alright, I'll wait.",
        ],
        "resolutions": [
            "Glad it's cleared. Have a nice day!",
            'Thanks for the screenshot – the second line is still marked "pending", so it\'s the reservation. Some banks take the full 7 business days; it will drop off without any action needed.',
            "Sounds good – it will drop off by itself. Reply here if it's still there after 7 business days.",
        ],
    },
    {
        "key": "double_charge_real",
        "group": "billing",
        "n": 2,
        "type": "incident",
        "priority": ["high"],
        "tags": ["double_charge", "duplicate_capture", "refund"],
        "articles": ["double-charge"],
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (3, 8),
            "payment": ["Visa", "Mastercard"],
        },
        "subjects": ["Charged twice – both booked", "Duplicate charge {order}"],
        "openers": [
            "Both charges of {total} are now booked on my credit card statement, not pending. Screenshot attached. Order {order}.",
            "I was charged twice for {order} and it's been 10 days. Both are final. I want one refunded.",
        ],
        "internal": [
            "PSP shows two captures for {order} (retry after gateway timeout). Refund duplicate capture."
        ],
        "replies": [
            "Thank you for the screenshot, and I'm sorry – you're right. A timeout at our payment provider caused a second capture. I've refunded the duplicate {total} today; it reaches your card in 3–5 business days. More: {link}",
        ],
        "followups": ["Thanks for fixing it.", "Seen the refund. OK."],
        "resolutions": [{"text": "Thanks for confirming, and apologies again.", "refund": "total_duplicate"}],
    },
    {
        "key": "payment_declined",
        "group": "billing",
        "n": 5,
        "type": "problem",
        "priority": ["normal"],
        "tags": ["payment_declined", "checkout"],
        "articles": ["payment-declined", "currency-fees"],
        "macro": "payment-declined",
        "order": None,
        "customer_countries": ["UK", "US", "CH", "NO", "DE", "NL"],
        "subjects": ["Card keeps getting declined", "Can't pay at checkout", "Payment failed"],
        "openers": [
            "I've tried three times to pay with my {card} and it keeps saying declined. My bank says there's nothing wrong. Very annoying.",
            "Payment error at checkout every time. Tried 2 cards.",
            "Trying to order the {any_item} but the payment page says 'transaction refused'. Is your site down?",
            "My {card} gets rejected on your website but works everywhere else. Help please, the sale ends tonight.",
            "Hi, I'm in {country}. Is there a problem paying from abroad? My card won't go through on your site.",
        ],
        "replies": [
            "Sorry about the trouble. The most common causes are: the 3-D Secure confirmation in your banking app timing out, a billing postcode that doesn't match your bank's records, or a card that blocks foreign online payments – our payment processor is in the Netherlands, so cards from {country} may count as foreign. Your bank can see the exact reason. Trying PayPal or Apple/Google Pay often works. Checklist: {link}",
            "No order was created, so nothing has been charged – a failed attempt can leave a pending reservation that disappears within 3–7 business days. Could you try once more with the banking app open for the 3-D Secure step, and with ad blockers paused? Here's the full checklist: {link}",
        ],
        "followups": [
            "The bank had blocked foreign payments. Works now!",
            "PayPal worked. Thanks.",
            "Turned off my ad blocker and it went through.",
        ],
        "resolutions": ["Great, glad it worked!", "Perfect – enjoy your order."],
    },
    {
        "key": "forgot_promo",
        "group": "billing",
        "n": 7,
        "type": "task",
        "priority": ["low", "normal"],
        "tags": ["promo_code", "forgot_code", "refund"],
        "articles": ["forgot-promo"],
        "macro": "forgot-promo-refund",
        "order": {
            "stage": "shipped",
            "final": "delivered",
            "age": (1, 6),
            "min_total": 50,
            "exclude_skus": ["LU-606"],
        },
        "subjects": [
            "Forgot my discount code",
            "Can you still apply WELCOME10?",
            "Forgot promo code on {order}",
        ],
        "openers": [
            "I completely forgot to enter my WELCOME10 code when I ordered {order}. Can you still apply it?",
            "Hi, I had a 10% newsletter code but forgot it at checkout. Is it too late?",
            "forgot discount code. order {order}. can u fix",
        ],
        "replies": [
            "No problem! A code can't be added after payment, but because you're within 14 days of ordering and the code was valid for this order, I've refunded its value: {promo_value} to your {payment}. {refund_timing} Policy: {link}",
            "It happens! WELCOME10 was valid for your first order, so I've refunded the 10% ({promo_value}) to your {payment}. For next time: within 60 minutes of ordering you can also cancel yourself and reorder with the code.",
        ],
        "followups": ["Amazing, thank you!", "Thanks 🙏"],
        "resolutions": [{"text": "You're welcome! Enjoy your order.", "refund": "promo"}],
    },
    {
        "key": "promo_invalid",
        "group": "billing",
        "n": 5,
        "type": "question",
        "priority": ["low"],
        "tags": ["promo_code", "invalid_code", "exclusions"],
        "articles": ["promo-codes"],
        "macro": "promo-not-valid",
        "order": None,
        "subjects": ["Discount code not working", "Promo code rejected", "Voucher code invalid?"],
        "openers": ["(variant)"],
        "replies": ["(variant)"],
        "variants": [
            {
                "openers": [
                    "I'm trying to use SPRING15 on the Lumo Robot Mower M1 and it says the code isn't valid. The email said it's valid until Sunday.",
                    "Why doesn't SPRING15 work for the robot mower?? It works for other stuff in my basket.",
                ],
                "replies": [
                    "Thanks for the details. The code itself is valid, but promo codes can't be used on the Lumo Robot Mower M1 (nor on gift cards or Oak Club membership), which is why it's rejected for the mower. It will still apply to the other items in your basket. All rules: {link}"
                ],
            },
            {
                "openers": [
                    "Your summer email says 20% off with SUMMER20 but checkout says invalid code.",
                    "SUMMER20 not working. Why?",
                ],
                "replies": [
                    "I'm sorry – SUMMER20 ended on 31 August, and expired codes can't be reactivated. Keep an eye on the newsletter for the next one. All promo rules: {link}"
                ],
            },
            {
                "openers": [
                    "Can I use two codes in one order? The second one gets rejected.",
                    "I have WELCOME10 and a code from a magazine. Only one works?",
                ],
                "replies": [
                    "Only one promo code per order is possible, so the second code is rejected – just pick the one that gives the bigger discount. You can combine one code with a gift card payment, though. All rules: {link}"
                ],
            },
            {
                "openers": [
                    "WELCOME10 doesn't work for me. I signed up for the newsletter with my work email.",
                    "My welcome code says already used?",
                ],
                "replies": [
                    "WELCOME10 is personal: it works once, on a first order of €50 or more, and only when you check out with the email address it was sent to. If you signed up with another address, use that one at checkout. Rules: {link}"
                ],
            },
        ],
        "followups": ["Ah ok. Thanks for explaining.", "That's a shame. Ok."],
        "resolutions": ["You're welcome! Let us know if you need anything else."],
    },
    {
        "key": "price_drop",
        "group": "billing",
        "n": 6,
        "type": "task",
        "priority": ["low", "normal"],
        "tags": ["price_drop", "price_adjustment"],
        "articles": ["price-drop"],
        "macro": "price-drop-refund",
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (3, 12),
            "min_total": 60,
            "exclude_skus": ["GC-001", "OC-001"],
        },
        "subjects": ["Price went down after I bought", "Price adjustment {item}", "{item} is cheaper now"],
        "openers": [
            "I bought the {item} on {ordered} for {price} and now it's {new_price} on your website. Can I get the difference back?",
            "Hey, the {item} dropped in price a few days after my order. Do you do price adjustments?",
            "Bit annoyed – paid full price for the {item} last week, now it's on sale.",
        ],
        "replies": [
            "Good news: our price drop protection covers this. Your order was placed within 14 days of the price change, so I've refunded the difference of {price_diff} to your {payment}. {refund_timing} Details: {link}",
            "Yes, we do! If our own price drops within 14 days of your order, we refund the difference once per item. I've processed {price_diff} for the {item} today.",
        ],
        "followups": ["Great service, thank you!", "Thanks!"],
        "resolutions": [{"text": "You're welcome – enjoy!", "refund": "price_diff"}],
    },
    {
        "key": "price_match_competitor",
        "group": "billing",
        "n": 3,
        "type": "question",
        "priority": ["low"],
        "tags": ["price_match", "competitor", "declined"],
        "articles": ["price-drop"],
        "order": None,
        "subjects": ["Do you price match?", "Cheaper on another site"],
        "openers": [
            "The {any_item} is €20 cheaper on another website. Will you match that price?",
            "Found the same {any_item} cheaper elsewhere, can you match it? Then I'll order from you.",
        ],
        "replies": [
            "Thanks for asking before ordering! We don't match other retailers' or marketplaces' prices. What we do offer is price drop protection: if our own price drops within 14 days of your order, we refund the difference. More: {link}",
        ],
        "followups": ["Ok, thanks anyway.", "fair enough"],
        "resolutions": ["You're welcome – have a great day!"],
    },
    {
        "key": "gift_card_lost",
        "group": "billing",
        "n": 5,
        "type": "task",
        "priority": ["normal"],
        "tags": ["gift_card", "resend"],
        "articles": ["gift-cards"],
        "macro": "gift-card-resend",
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (10, 200),
            "skus": ["GC-001"],
            "single_item": True,
        },
        "subjects": ["Gift card never arrived", "Lost gift card code", "Resend gift card"],
        "openers": [
            "I bought a gift card for my sister ({order}) but she says she never received it. Can you check?",
            "My mum gave me a Bramble & Oak gift card by email and I deleted it by mistake. Can I get the code again?",
            "the gift card email went to spam and now it's gone. please resend",
        ],
        "replies": [
            "I can see the gift card from {order} was sent on {ordered}. For security we can only resend it to the purchaser's email address, so I've just resent it to the address used for the order – please forward it from there. It's valid for 3 years from purchase. Check the balance any time at brambleandoak.example/giftcard. More: {link}",
            "No problem. Lost gift card codes can be re-sent to the person who bought the gift card. I've resent it to the purchaser's email; they can forward it to you.",
        ],
        "followups": ["Got it, thanks!", "Received and forwarded 👍"],
        "resolutions": ["Great! Enjoy shopping.", "Perfect – happy shopping!"],
    },
    {
        "key": "invoice_company",
        "group": "billing",
        "n": 5,
        "type": "task",
        "priority": ["low"],
        "tags": ["invoice", "company_details"],
        "articles": ["invoices"],
        "macro": "invoice-corrected",
        "order": {"stage": "delivered", "final": "delivered", "age": (5, 60)},
        "subjects": [
            "Invoice with company name",
            "Need invoice for {order}",
            "Please add our company to the invoice",
        ],
        "openers": [
            "Could you put our company name on the invoice for {order}? {company}, {city}. Our accountant needs it.",
            "Where can I download the invoice? I ordered as a guest.",
            "hi need a VAT invoice for my employer for the {item}",
        ],
        "pair_replies": True,
        "replies": [
            "Of course. I've updated the invoice for {order} with {company} and the address you gave; the new PDF is in Account > Orders > Invoice and attached here. We can add company details up to 90 days after purchase. More: {link}",
            "For guest orders the invoice PDF is attached to the shipping confirmation email. I've also attached it here. If you need a company name added, just send me the details – that's possible up to 90 days after purchase. Details: {link}",
            "You'll find the VAT invoice for {order} under Account > Orders > Invoice, and I've attached it here too. If your employer needs its company name on it, send me the details – we can add them up to 90 days after purchase. Details: {link}",
        ],
        "followups": ["Perfect, thank you.", "Got it, thanks."],
        "resolutions": ["You're welcome!"],
    },
    {
        "key": "vat_id_forgot",
        "group": "billing",
        "n": 3,
        "type": "task",
        "priority": ["normal"],
        "tags": ["vat", "reverse_charge", "b2b", "refund"],
        "articles": ["business-vat"],
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (3, 20),
            "countries": ["DE", "BE", "FR", "AT", "ES", "IT", "DK", "IE", "LU"],
            "min_total": 200,
        },
        "subjects": [
            "Forgot VAT number at checkout",
            "Reverse charge invoice needed",
            "B2B order without VAT ID",
        ],
        "openers": [
            "We ordered {order} for our café but forgot to enter our VAT ID ({vat_id}). Can you remove the VAT?",
            "Hello, this is a business purchase. VAT number {vat_id}. Can we get a reverse-charge invoice?",
        ],
        "replies": [
            "Certainly. I validated {vat_id} in the EU VIES database and, because you're within 30 days of the order date, I've issued a corrected reverse-charge invoice (attached) and refunded the VAT of {vat_amount} to your {payment}. {refund_timing} More: {link}",
        ],
        "followups": ["Great, thanks for the quick help!", "Received the invoice, thank you."],
        "resolutions": [
            {
                "text": "You're welcome! For future orders, enter the VAT ID under Business purchase at checkout.",
                "refund": "vat",
            }
        ],
    },
    {
        "key": "oak_club_cancel",
        "group": "billing",
        "n": 6,
        "type": "task",
        "priority": ["low", "normal"],
        "tags": ["oak_club", "membership", "cancel_renewal"],
        "articles": ["oak-club"],
        "macro": "oak-club-cancel",
        "order": {
            "stage": "delivered",
            "final": "delivered",
            "age": (2, 40),
            "skus": ["OC-001"],
            "single_item": True,
            "member": True,
        },
        "subjects": ["Cancel Oak Club", "Membership renewed without asking", "Refund membership fee"],
        "openers": [
            "My Oak Club membership renewed automatically and I was charged €39. I don't want it anymore. Refund please.",
            "How do I cancel my membership? And do I get money back?",
            "Didn't realise the membership auto-renews. Please cancel and refund.",
        ],
        "replies": ["(variant)"],
        "followups": ["Ok thanks.", "Thanks for sorting it."],
        "resolutions": ["(variant)"],
        "variants": [
            {
                "order": {
                    "stage": "delivered",
                    "final": "refunded",
                    "age": (2, 12),
                    "skus": ["OC-001"],
                    "single_item": True,
                    "member": True,
                },
                "replies": [
                    "I've checked your account: the membership renewed on {ordered} and no benefits have been used since, and you're within 14 days of the renewal. So I've cancelled it and refunded the full €39 to your {payment}. You can always manage renewal under Account > Membership. Details: {link}"
                ],
                "resolutions": [{"text": "You're welcome! {refund_timing}", "refund": "total"}],
            },
            {
                "order": {
                    "stage": "delivered",
                    "final": "delivered",
                    "age": (20, 40),
                    "skus": ["OC-001"],
                    "single_item": True,
                    "member": True,
                },
                "replies": [
                    "I've switched off automatic renewal, so you won't be charged again. Because the renewal on {ordered} is more than 14 days ago and free shipping was used since, we can't refund the fee – your membership simply stays active until the end of the year you paid for, so you keep the benefits until then. Details: {link}"
                ],
                "resolutions": ["You're welcome. Enjoy the benefits until the end of your term!"],
            },
        ],
    },
    {
        "key": "subscription_locked",
        "group": "billing",
        "n": 3,
        "type": "question",
        "priority": ["low"],
        "tags": ["subscribe_and_save", "subscription", "skip_delivery"],
        "articles": ["subscribe-save"],
        "macro": "subscription-locked",
        "order": {
            "stage": "shipped",
            "final": "delivered",
            "age": (0, 1),
            "skus": ["KI-306", "LU-610"],
            "single_item": True,
        },
        "subjects": ["Skipped delivery but it still shipped", "Subscription shipped after I paused it"],
        "openers": [
            "I skipped this month's {item} delivery yesterday, but I got a shipping email today. Why?",
            "paused my subscription and still got charged for {item}",
        ],
        "replies": [
            "Changes to Subscribe & Save can be made until 3 days before the next dispatch date; after that the delivery is locked and ships. Your skip came in after the lock, so it applies to the next delivery instead. If you don't want this one, you can return it unopened within the usual window for a refund. Details: {link}",
        ],
        "followups": ["Ok, I'll keep it this time.", "Fine, I'll send it back."],
        "resolutions": [
            "Thanks! Your next delivery is skipped as you requested.",
            "No problem – use the Returns portal and the refund follows once it arrives.",
        ],
    },
    {
        "key": "chargeback_open",
        "group": "billing",
        "n": 2,
        "type": "problem",
        "priority": ["high"],
        "tags": ["chargeback", "dispute"],
        "articles": ["chargebacks"],
        "order": {"stage": "delivered", "final": "delivered", "age": (20, 40)},
        "subjects": ["Refund please, I've opened a dispute", "Why is my refund not processed?"],
        "openers": [
            "I opened a chargeback with my bank because I was waiting too long. Now you say you can't refund me? Explain.",
            "My return for {order} arrived at your warehouse but there's no refund. I contacted my bank.",
        ],
        "internal": [
            "Dispute opened by issuer on {order}. Evidence submitted. Refund blocked while dispute open."
        ],
        "replies": [
            "I understand you've been waiting and I'm sorry about that. Because a dispute is now open, your bank is deciding the case and we can't refund in parallel – you'd be paid twice. We've answered the bank with the order details. If you withdraw the dispute with your bank, I'll refund you directly right away; that's usually much faster. More: {link}",
        ],
        "followups": ["I withdrew it. Please refund now.", "I'll let the bank handle it."],
        "resolutions": [
            {
                "text": "Thanks – the dispute is closed on our side and I've refunded {total} to your card. It should arrive within 3–5 business days.",
                "status": "refunded",
                "refund": "total",
            },
            "Understood. The bank will contact you with their decision. If anything changes, just reply here.",
        ],
    },
    {
        "key": "preorder_double_auth",
        "group": "billing",
        "n": 2,
        "type": "question",
        "priority": ["normal"],
        "tags": ["pre_order", "authorisation", "pending"],
        "articles": ["pre-orders", "double-charge"],
        "order": {
            "stage": "shipped",
            "final": "delivered",
            "age": (20, 40),
            "skus": ["LU-606", "LU-607", "CA-202"],
            "preorder": True,
            "payment": ["Visa", "Mastercard", "Apple Pay"],
        },
        "subjects": ["Two pending payments for pre-order", "Pre-order charged twice?"],
        "openers": [
            "My pre-order of the {item} just shipped and now there are two pending amounts of {total} on my card. Please cancel one.",
            "Why was my card authorised again for the {item}?",
        ],
        "replies": [
            "You'll only pay once. Card authorisations expire after 7 days, so for pre-orders we authorise again when the item ships – that's the second pending amount. The older reservation is released automatically by your bank within a few days. Details: {link}",
        ],
        "followups": ["Ok, the old one is gone now.", "Right, thanks."],
        "resolutions": ["Great, enjoy the {item}!"],
    },
    {
        "key": "currency_refund_difference",
        "group": "billing",
        "n": 2,
        "type": "question",
        "priority": ["low"],
        "tags": ["currency", "exchange_rate", "refund_amount"],
        "articles": ["currency-fees"],
        "order": {
            "stage": "delivered",
            "final": "returned",
            "age": (25, 40),
            "countries": ["UK", "US", "CH", "NO"],
            "refunded_before": True,
        },
        "subjects": ["Refund less than I paid (currency)", "Refund in pounds lower than charge"],
        "openers": [
            "I paid £{local_paid} for the {item} but only got £{local_refund} back. Where's the rest?",
            "Refund is less than the charge in my currency. Why?",
        ],
        "replies": [
            "We refunded exactly the euro amount you paid: {item_paid}. Your bank converts euros at the rate of the day (and may have charged a foreign transaction fee on the original payment), so the amount in your currency differs. We don't receive or control these fees, and can't refund them. More: {link}",
        ],
        "followups": ["Annoying, but ok.", "Ok understood."],
        "resolutions": [
            "Thanks for understanding. Paying in euros (not your card's 'pay in your currency' offer) is usually the cheapest option."
        ],
    },
]
