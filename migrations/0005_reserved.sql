-- Placeholder so that 0006 follows an unbroken sequence on this branch; the real 0005 replaces it.
SELECT 1;
