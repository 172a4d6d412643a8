-- hancha: the township office that asked.
--
-- A township office (乡镇计生办) asks at its window about people our registry may not hold; it
-- must find its own inquiries again (show, pending --outbound) without seeing other offices'.
-- NULL for county-wide work (sweeps, reconciliation, the county office and loopback).
ALTER TABLE inquiries
    ADD COLUMN asked_by_township text CHECK (asked_by_township ~ '^[0-9]{9}$');
