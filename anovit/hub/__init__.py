"""Layer 8, the Hugging Face Hub: publishing and pulling run folders (:mod:`.repo`), the Hub conventions of the
public ``anovit.Detector`` (:mod:`.pretrained`: from_pretrained, save_pretrained, push_to_hub), the model card
(:mod:`.model_card`) and what the Hub page lists (:mod:`.catalog`, with the curated ``hub_models.json``). May
import report and everything below; not deploy, jobs, app or cli.
"""
