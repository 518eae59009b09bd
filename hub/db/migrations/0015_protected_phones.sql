-- Rule 6 protects a shielded child's carers' phone numbers as it does her addresses
-- (a refuge's new number reaches her as surely as its address): kept beside them in
-- protected_addresses as 'tel:' and the number's digits, the UK's +44 dialled as 0
-- (hub.records.phone_key); the postcode column of such a row is the key itself.
-- Every number a shielded child's history holds is protected, as `hub shield` does.
INSERT INTO protected_addresses (address_key, child_id)
SELECT DISTINCT 'tel:0' || n.digits, n.child_id
FROM (
    SELECT v.child_id,
           ltrim(CASE WHEN d.d LIKE '0044%' THEN substr(d.d, 5)
                      WHEN d.d LIKE '44%' AND length(d.d) >= 12 THEN substr(d.d, 3)
                      ELSE d.d END, '0') AS digits
    FROM child_versions v
    JOIN children c USING (child_id)
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(v.record->'carers') = 'array' THEN v.record->'carers'
             ELSE '[]'::jsonb END) AS carer(value)
    CROSS JOIN LATERAL (SELECT regexp_replace(
        CASE WHEN jsonb_typeof(carer.value) = 'object' THEN coalesce(carer.value->>'phone', '')
             ELSE '' END, '[^0-9]', '', 'g') AS d) AS d
    WHERE c.shielded
) n
WHERE length(n.digits) >= 9
ON CONFLICT DO NOTHING;
